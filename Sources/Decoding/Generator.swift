import Foundation
import Architectures
import TensorCore

/// Autoregressive generation over a KV cache: new prompt tokens go through the model as one
/// batch (prefill), then each chosen token alone (decode). The cache outlives a call, so a
/// chat's next turn only prefills what its rendering adds to the tokens already cached.
public final class Generator {
    public let model: DecoderModel
    /// Most positions the cache may hold (the model's context unless the caller says less).
    public let context: Int
    let cache: KVCache
    /// The tokens whose keys and values are in the cache, in order.
    public private(set) var cachedTokens: [Int32] = []

    public init(model: DecoderModel, context: Int? = nil) {
        self.model = model
        self.context = max(1, min(context ?? model.config.maxPositions, model.config.maxPositions))
        cache = model.makeCache(capacity: min(self.context, 512))
    }

    /// Why generation ended.
    public enum Finish: Equatable, Sendable {
        case stopToken(Int32)
        case maxTokens
        /// The caller's `onToken` asked to stop (a stop string, an interrupt).
        case caller
        /// The context is full.
        case contextFull
    }

    public struct Result: Sendable {
        public var tokens: [Int32]
        public var finish: Finish
        /// Prompt tokens that had to be prefilled (the rest were already cached).
        public var prefilled: Int
        public var promptSeconds: Double
        public var decodeSeconds: Double
    }

    /// Continues `prompt` by up to `maxTokens` tokens sampled as `sampling` says, stopping at
    /// any token of `stop` (returned as the last token). `onToken` sees each token as it is
    /// chosen; returning false stops.
    public func generate(prompt: [Int32], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(), stop: Set<Int32> = [],
                         onToken: (Int32) -> Bool = { _ in true }) -> Result {
        precondition(!prompt.isEmpty, "generate: the prompt has no tokens")
        guard prompt.count < context else { return Result(tokens: [], finish: .contextFull, prefilled: 0, promptSeconds: 0, decodeSeconds: 0) }
        // Reuse the longest cached prefix, keeping at least one prompt token to prefill (its
        // logits choose the first reply token).
        var shared = 0
        while shared < min(cachedTokens.count, prompt.count - 1), cachedTokens[shared] == prompt[shared] { shared += 1 }
        cache.truncate(to: shared)
        cachedTokens.removeSubrange(shared...)
        cache.reserve(min(context, prompt.count + maxTokens))
        var sampler = Sampler(sampling)
        var history = prompt, produced: [Int32] = []
        let start = Clock.now
        var logits = model.nextTokenLogits(ids: Array(prompt[shared...]), cache: cache)
        cachedTokens = prompt
        let prefilled = Clock.now
        var finish = Finish.maxTokens
        while produced.count < maxTokens {
            let next = sampler.next(logits: logits, history: history)
            produced.append(next)
            history.append(next)
            if stop.contains(next) { finish = .stopToken(next); break }
            if !onToken(next) { finish = .caller; break }
            guard produced.count < maxTokens else { break }
            guard cache.length < context else { finish = .contextFull; break }
            cache.reserve(min(context, max(cache.capacity, cache.length + 1)))
            logits = model.nextTokenLogits(ids: [next], cache: cache)
            cachedTokens.append(next)
        }
        return Result(tokens: produced, finish: finish, prefilled: prompt.count - shared, promptSeconds: prefilled - start, decodeSeconds: Clock.now - prefilled)
    }
}

/// Monotonic seconds (wall clocks jump; timings must not).
enum Clock {
    static var now: Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
