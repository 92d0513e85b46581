import Architectures
import Decoding
import Foundation
import TensorCore
import Tokenization

/// One generation that advances only inside ``BatchedDecoder/step(_:prefillBudget:)``, together
/// with other sequences (other adapters, other lengths) sharing the base's product.
///
/// It follows ``GenerationSession/generate(_:parseSpecial:options:)`` rule for rule — the same
/// context and budget checks, sampler, stop tokens and stop strings — so at temperature 0 its
/// text is `lorikeet generate`'s (up to the order of sums in the shared product). Its KV cache
/// is its own, sized for prompt plus reply, and goes with it.
public final class BatchedSequence {
    /// The base weights it runs on: sequences stepped together as one product share this one.
    public let decoder: DecoderModel
    /// Its adapter's weights, or nil for the base alone.
    public let adapter: AdapterWeights?
    /// Tokens of the prompt after encoding.
    public let promptTokens: Int
    let tokenizer: any Tokenizer
    let prompt: [Int32]
    let maxTokens: Int, context: Int, stopTokens: Set<Int32>
    var sampler: Sampler
    var history: [Int32]
    var produced: [Int32] = []
    var filter: StopStringFilter
    let cache: KVCache
    /// Why it ended, once it has; the summary is then the last event it gives.
    public private(set) var finish: Generator.Finish?
    /// True once the summary was given: the caller drops the sequence (and its cache).
    public private(set) var isDone = false
    var startTime = 0.0, prefillEnd = 0.0, endTime = 0.0

    /// Encodes `text` with `base`'s tokenizer for a reply with `options`, over `decoder` (the
    /// base's weights in the representation `adapter` was trained over) within `context` positions.
    public convenience init(text: String, parseSpecial: Bool, base: BaseModel, decoder: DecoderModel, adapter: AdapterWeights?,
                            context: Int? = nil, options: GenerationOptions) throws(LorikeetError) {
        let ids: [Int32]
        do { ids = try base.tokenizer.encode(text, parseSpecial: parseSpecial) } catch { throw .model(error.description) }
        try self.init(prompt: ids, base: base, decoder: decoder, adapter: adapter, context: context, options: options)
    }

    /// A reply to the already encoded `prompt` (see the text initialiser).
    public init(prompt ids: [Int32], base: BaseModel, decoder: DecoderModel, adapter: AdapterWeights?,
                context: Int? = nil, options: GenerationOptions) throws(LorikeetError) {
        guard !ids.isEmpty else { throw .invalidRequest("the prompt encodes to no tokens") }
        self.decoder = decoder
        self.adapter = adapter
        tokenizer = base.tokenizer
        prompt = ids
        promptTokens = ids.count
        maxTokens = options.maxTokens
        self.context = max(1, min(context ?? decoder.config.maxPositions, decoder.config.maxPositions))
        stopTokens = base.stopTokens
        sampler = Sampler(options.sampling)
        history = ids
        filter = StopStringFilter(stopStrings: options.stopStrings)
        cache = decoder.makeCache(capacity: max(1, min(self.context, ids.count + max(0, options.maxTokens))))
        startTime = Self.now
        if !(ids.count < self.context) { end(.contextFull) } else if maxTokens <= 0 { end(.maxTokens) }
    }

    /// Prompt tokens already in the cache.
    var prefilled: Int { min(cache.length, prompt.count) }
    public var isPrefilling: Bool { finish == nil && cache.length < prompt.count }

    /// Ends it at the caller's request (a client went away); the summary follows at the next step.
    public func stop() { if finish == nil { end(.caller) } }

    private func end(_ why: Finish) {
        finish = why
        endTime = Self.now
        if prefillEnd == 0 { prefillEnd = endTime }
    }
    public typealias Finish = Generator.Finish

    /// Monotonic seconds.
    static var now: Double { ProcessInfo.processInfo.systemUptime }

    /// The tokens this sequence adds in the next step (a prompt chunk of at most `chunk`, or its
    /// last token), or nil when it has no step to take (ended now, or already ended).
    func nextInput(chunk: Int) -> [Int32]? {
        guard finish == nil else { return nil }
        if cache.length < prompt.count {
            guard chunk > 0 else { return [] }
            return Array(prompt[cache.length..<min(prompt.count, cache.length + chunk)])
        }
        guard let last = produced.last, produced.count < maxTokens else { end(.maxTokens); return nil }
        guard cache.length < context else { end(.contextFull); return nil }
        return [last]
    }

    /// Takes the logits of the step it just took; the events it yields (text, then the summary
    /// once it has ended).
    func accept(_ logits: [Float]) -> [GenerationEvent] {
        if cache.length < prompt.count { return [] }  // more of the prompt to prefill
        if prefillEnd == 0 { prefillEnd = Self.now }
        let token = sampler.next(logits: logits, history: history)
        produced.append(token)
        history.append(token)
        if stopTokens.contains(token) {
            end(.stopToken(token))
            return closing()
        }
        let (piece, go) = filter.append(tokenizer.decodeBytes([token]))
        var events: [GenerationEvent] = piece.isEmpty ? [] : [.text(piece)]
        // The checks `Generator.Run` makes before its next step, made now so the summary is not a step late.
        if !go { end(.caller) } else if produced.count >= maxTokens { end(.maxTokens) } else if cache.length >= context { end(.contextFull) }
        if finish != nil { events += closing() }
        return events
    }

    /// What is held back, then the summary (once).
    func closing() -> [GenerationEvent] {
        guard !isDone else { return [] }
        isDone = true
        let rest = filter.finish()
        return (rest.isEmpty ? [] : [.text(rest)]) + [.finished(summary)]
    }

    /// How it went so far.
    public var summary: GenerationSummary {
        var count = produced.count
        if case .stopToken? = finish { count -= 1 }
        return GenerationSummary(text: filter.text, promptTokens: promptTokens, prefilled: prefilled, generatedTokens: count,
                                 promptSeconds: max(0, prefillEnd - startTime),
                                 decodeSeconds: max(0, (endTime == 0 ? Self.now : endTime) - (prefillEnd == 0 ? startTime : prefillEnd)),
                                 finish: finish ?? .maxTokens)
    }
}

/// Steps many ``BatchedSequence``s at once: continuous batching's inner loop.
public enum BatchedDecoder {
    /// One step of every sequence in `sequences` that can take one: decoding ones add their
    /// last token, prefilling ones a chunk of their prompt (at most `prefillBudget` prompt tokens
    /// in all per step, first come first served, so running streams keep flowing while long
    /// prompts arrive). Sequences over the same decoder run as ONE batched forward. Returns each
    /// sequence's events in order (empty while it is still prefilling); a sequence whose events
    /// end with `.finished` is done.
    public static func step(_ sequences: [BatchedSequence], prefillBudget: Int = 256) -> [[GenerationEvent]] {
        var events = Array(repeating: [GenerationEvent](), count: sequences.count)
        var budget = max(1, prefillBudget)
        var batches: [ObjectIdentifier: [(index: Int, row: BatchRow)]] = [:]
        var order: [ObjectIdentifier] = []
        for (i, sequence) in sequences.enumerated() {
            let prefilling = sequence.isPrefilling
            guard let ids = sequence.nextInput(chunk: budget) else {
                if sequence.finish != nil { events[i] = sequence.closing() }
                continue
            }
            if ids.isEmpty { continue }  // waits for prefill budget
            if prefilling { budget -= ids.count }
            let key = ObjectIdentifier(sequence.decoder)
            if batches[key] == nil { order.append(key) }
            batches[key, default: []].append((i, BatchRow(ids: ids, cache: sequence.cache, adapter: sequence.adapter)))
        }
        for key in order {
            guard let batch = batches[key], let first = batch.first else { continue }
            let logits = sequences[first.index].decoder.batchedNextTokenLogits(batch.map(\.row))
            for (entry, rowLogits) in zip(batch, logits) { events[entry.index] = sequences[entry.index].accept(rowLogits) }
        }
        return events
    }
}
