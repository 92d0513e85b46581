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
    public internal(set) var cachedTokens: [Int32] = []

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
        let run = start(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
        while let token = run.next() {
            if case .stopToken = run.finish { break }  // the stop token is returned, not shown
            if !onToken(token) { run.stop(); break }
        }
        return run.result
    }

    /// Starts continuing `prompt`: the returned run prefills on its first `next()` and then
    /// yields one token per call (the same tokens `generate` produces). One run at a time per
    /// generator: starting another reuses the cache.
    public func start(prompt: [Int32], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(), stop: Set<Int32> = []) -> Run {
        Run(generator: self, prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stop)
    }

    /// One continuation, token by token.
    public final class Run {
        let generator: Generator
        let prompt: [Int32], maxTokens: Int, stopTokens: Set<Int32>
        var sampler: Sampler
        var history: [Int32]
        public private(set) var produced: [Int32] = []
        /// Why it ended, once it has.
        public private(set) var finish: Finish?
        var logits: [Float] = []
        var started = false
        var shared = 0
        var startTime = 0.0, prefillEnd = 0.0, endTime = 0.0

        init(generator: Generator, prompt: [Int32], maxTokens: Int, sampling: SamplingOptions, stop: Set<Int32>) {
            self.generator = generator
            self.prompt = prompt
            self.maxTokens = maxTokens
            stopTokens = stop
            sampler = Sampler(sampling)
            history = prompt
        }

        /// The next token, or nil once the run has ended (a stop token is returned, then nil).
        public func next() -> Int32? {
            guard finish == nil else { return nil }
            let g = generator
            if !started {
                started = true
                precondition(!prompt.isEmpty, "generate: the prompt has no tokens")
                startTime = Clock.now
                guard prompt.count < g.context, maxTokens > 0 else { return end(prompt.count < g.context ? .maxTokens : .contextFull) }
                // Reuse the longest cached prefix, keeping at least one prompt token to prefill
                // (its logits choose the first reply token).
                while shared < min(g.cachedTokens.count, prompt.count - 1), g.cachedTokens[shared] == prompt[shared] { shared += 1 }
                g.cache.truncate(to: shared)
                g.cachedTokens.removeSubrange(shared...)
                g.cache.reserve(min(g.context, prompt.count + maxTokens))
                logits = g.model.nextTokenLogits(ids: Array(prompt[shared...]), cache: g.cache)
                g.cachedTokens = prompt
                prefillEnd = Clock.now
            } else {
                guard let last = produced.last else { return end(.maxTokens) }
                guard produced.count < maxTokens else { return end(.maxTokens) }
                guard g.cache.length < g.context else { return end(.contextFull) }
                g.cache.reserve(min(g.context, max(g.cache.capacity, g.cache.length + 1)))
                logits = g.model.nextTokenLogits(ids: [last], cache: g.cache)
                g.cachedTokens.append(last)
            }
            let token = sampler.next(logits: logits, history: history)
            produced.append(token)
            history.append(token)
            if stopTokens.contains(token) { finish = .stopToken(token); endTime = Clock.now }
            return token
        }

        /// Ends the run at the caller's request (a stop string, an interrupt).
        public func stop() { if finish == nil { _ = end(.caller) } }

        private func end(_ why: Finish) -> Int32? {
            finish = why
            endTime = Clock.now
            if !started || prefillEnd == 0 { prefillEnd = endTime }
            return nil
        }

        /// The tokens so far and how the run went.
        public var result: Result {
            Result(tokens: produced, finish: finish ?? .maxTokens, prefilled: started ? prompt.count - shared : 0,
                   promptSeconds: max(0, prefillEnd - startTime), decodeSeconds: max(0, (endTime == 0 ? Clock.now : endTime) - prefillEnd))
        }
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
