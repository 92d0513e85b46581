import Architectures
import Decoding
import Foundation
import Tokenization

/// How to sample a reply.
public struct GenerationOptions: Sendable, Equatable {
    /// The most tokens to generate.
    public var maxTokens: Int
    /// Temperature, top-k, top-p, min-p, repetition penalty and seed (temperature 0: greedy).
    public var sampling: SamplingOptions
    /// Generation stops when the text contains one of these; it is not part of the reply.
    public var stopStrings: [String]

    /// Options with llama.cpp's sampling defaults unless given.
    public init(maxTokens: Int = 256, sampling: SamplingOptions = SamplingOptions(), stopStrings: [String] = []) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
    }

    /// Greedy decoding of at most `maxTokens` tokens.
    public static func greedy(maxTokens: Int) -> GenerationOptions {
        GenerationOptions(maxTokens: maxTokens, sampling: SamplingOptions(temperature: 0))
    }
}

/// One message of a conversation, for the chat template.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant` or `tool`.
    public var role: String
    /// The message's text.
    public var content: String

    /// A message with any role.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: "system", content: text) }
    /// A user message.
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: "user", content: text) }
    /// An assistant message.
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: "assistant", content: text) }

    var jinja: JinjaValue { .dictionary([("role", .string(role)), ("content", .string(content))]) }
}

/// What a generation yields: text as it is produced (whole UTF-8 characters, never part of a
/// stop string), then one summary.
public enum GenerationEvent: Sendable {
    case text(String)
    case finished(GenerationSummary)
}

/// How a generation went.
public struct GenerationSummary: Sendable, Equatable {
    /// The whole reply (stop string and stop token excluded).
    public var text: String
    /// Prompt tokens after encoding, and how many had to be prefilled (the rest were cached).
    public var promptTokens: Int
    /// Prompt tokens run through the model (the rest came from the cache).
    public var prefilled: Int
    /// Tokens generated, the stop token not counted.
    public var generatedTokens: Int
    /// Seconds of prefill.
    public var promptSeconds: Double
    /// Seconds of decoding after the prompt.
    public var decodeSeconds: Double
    /// Why it stopped.
    public var finish: Generator.Finish

    /// Generated tokens per second of decoding.
    public var tokensPerSecond: Double { Double(generatedTokens) / max(decodeSeconds, 1e-9) }
}

/// A model with its KV cache, for several generations in a row: a chat's next turn prefills only
/// what its rendering adds to the tokens already cached.
public final class GenerationSession {
    /// The model it generates with.
    public let base: BaseModel
    let generator: Generator

    /// A session over `base` whose cache holds at most `context` positions (default: the model's).
    public init(_ base: BaseModel, context: Int? = nil) {
        self.base = base
        generator = Generator(model: base.model, context: context)
    }

    /// `messages` through the chat template with its generation prompt: the text a reply continues.
    public func renderPrompt(_ messages: [ChatMessage], tools: JinjaValue? = nil) throws(LorikeetError) -> String {
        try base.renderPrompt(messages.map(\.jinja), tools: tools)
    }

    /// Continues `text` (special tokens like `<|im_start|>` parsed when `parseSpecial`).
    public func generate(_ text: String, parseSpecial: Bool = true, options: GenerationOptions) throws(LorikeetError) -> TextGeneration {
        let ids: [Int32]
        do { ids = try base.tokenizer.encode(text, parseSpecial: parseSpecial) } catch { throw .model(error.description) }
        guard !ids.isEmpty else { throw .invalidRequest("the prompt encodes to no tokens") }
        return TextGeneration(base: base, run: generator.start(prompt: ids, maxTokens: options.maxTokens, sampling: options.sampling,
                                                               stop: base.stopTokens),
                              promptTokens: ids.count, stopStrings: options.stopStrings)
    }

    /// A reply to `messages`, rendered with the chat template.
    public func reply(to messages: [ChatMessage], tools: JinjaValue? = nil, options: GenerationOptions) throws(LorikeetError) -> TextGeneration {
        try generate(try renderPrompt(messages, tools: tools), parseSpecial: true, options: options)
    }
}

extension BaseModel {
    /// `messages` (template dictionaries) through the chat template with its generation prompt.
    public func renderPrompt(_ messages: [JinjaValue], tools: JinjaValue? = nil) throws(LorikeetError) -> String {
        guard let chatTemplate else { throw .invalidRequest("\(path) has no chat template; send plain text instead") }
        var variables = tokenizer.templateVariables
        if let tools { variables["tools"] = tools }
        do { return try chatTemplate.render(messages: messages, addGenerationPrompt: true, variables: variables) } catch {
            throw .model("\(path): \(error.description)")
        }
    }

    /// `messages` through the chat template with its generation prompt.
    public func renderPrompt(chat messages: [ChatMessage], tools: JinjaValue? = nil) throws(LorikeetError) -> String {
        try renderPrompt(messages.map(\.jinja), tools: tools)
    }

    /// A one-off generation (a fresh cache) continuing `text`.
    public func generate(_ text: String, parseSpecial: Bool = true, options: GenerationOptions) throws(LorikeetError) -> TextGeneration {
        try GenerationSession(self).generate(text, parseSpecial: parseSpecial, options: options)
    }
}

/// One generation as an `AsyncSequence` of ``GenerationEvent``s: prefill happens on the first
/// element, then each element costs one decoding step. Cancelling the consuming task ends it at
/// the next step. ``collect(onText:)`` runs the same steps synchronously.
public struct TextGeneration: AsyncSequence {
    /// Text pieces, then one summary.
    public typealias Element = GenerationEvent
    let state: State

    init(base: BaseModel, run: Generator.Run, promptTokens: Int, stopStrings: [String]) {
        state = State(tokenizer: base.tokenizer, run: run, promptTokens: promptTokens, stopStrings: stopStrings)
    }

    /// Steps the generation: one decoding step per element.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let state: State
        /// The next piece of text, the summary, or nil at the end.
        public mutating func next() async throws -> GenerationEvent? {
            if Task.isCancelled { state.run.stop() }
            return state.nextEvent()
        }
    }

    /// An iterator over this generation (iterate it once).
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(state: state) }

    /// The next event, computed on the calling thread: a scheduler that interleaves many
    /// generations (a server) calls it once per turn. Prefill happens on the first call; nil
    /// after the summary.
    public func nextEvent() -> GenerationEvent? { state.nextEvent() }

    /// Ends the generation at its next step (a client went away); the summary still follows.
    public func stop() { state.run.stop() }

    /// Tokens of the prompt after encoding: with the reply's budget, what the context must hold.
    public var promptTokens: Int { state.promptTokens }

    /// Runs the generation to its end on this thread, handing each piece of text to `onText`
    /// (return false to stop); returns the summary.
    @discardableResult
    public func collect(onText: (String) -> Bool = { _ in true }) -> GenerationSummary {
        while let event = state.nextEvent() {
            switch event {
            case .text(let piece): if !onText(piece) { state.run.stop() }
            case .finished(let summary): return summary
            }
        }
        return state.summary
    }

    /// The decoding run and the text filter between its tokens and the caller.
    final class State {
        let tokenizer: any Tokenizer
        let run: Generator.Run
        let promptTokens: Int
        var filter: StopStringFilter
        var finished = false

        init(tokenizer: any Tokenizer, run: Generator.Run, promptTokens: Int, stopStrings: [String]) {
            self.tokenizer = tokenizer
            self.run = run
            self.promptTokens = promptTokens
            filter = StopStringFilter(stopStrings: stopStrings)
        }

        /// The next piece of text, or the summary once, then nil.
        func nextEvent() -> GenerationEvent? {
            guard !finished else { return nil }
            while let token = run.next() {
                if case .stopToken = run.finish { break }
                let (piece, go) = filter.append(tokenizer.decodeBytes([token]))
                if !go { run.stop() }
                if !piece.isEmpty { return .text(piece) }
                if !go { break }
            }
            let rest = filter.finish()
            if !rest.isEmpty { return .text(rest) }
            finished = true
            return .finished(summary)
        }

        var summary: GenerationSummary {
            let result = run.result
            var produced = result.tokens.count
            if case .stopToken = result.finish { produced -= 1 }
            return GenerationSummary(text: filter.text, promptTokens: promptTokens, prefilled: result.prefilled, generatedTokens: produced,
                                     promptSeconds: result.promptSeconds, decodeSeconds: result.decodeSeconds, finish: result.finish)
        }
    }
}

/// Generated bytes → text: whole UTF-8 characters only, holding back any tail that may begin a
/// stop string, and cutting the text where a stop string appears (which is never released).
struct StopStringFilter {
    let stopStrings: [String]
    private var pending: [UInt8] = []
    /// Everything released so far.
    private(set) var text = ""

    init(stopStrings: [String]) { self.stopStrings = stopStrings.filter { !$0.isEmpty } }

    /// Adds a token's bytes; returns the text now safe to release, and false once a stop string
    /// has appeared.
    mutating func append(_ bytes: [UInt8]) -> (String, Bool) {
        pending += bytes
        var end = pending.count
        while end > 0, String(validating: pending[..<end], as: UTF8.self) == nil, pending.count - end < 4 { end -= 1 }
        guard end > 0, let complete = String(validating: pending[..<end], as: UTF8.self) else { return ("", true) }
        let candidate = text + complete
        if let hit = stopStrings.compactMap({ candidate.range(of: $0)?.lowerBound }).min() {
            let kept = String(candidate[..<hit])
            let released = String(kept.dropFirst(text.count))
            text = kept
            pending = []
            return (released, false)
        }
        // Hold back the longest tail that could begin a stop string.
        var hold = 0
        for s in stopStrings {
            for n in stride(from: min(s.count - 1, candidate.count), to: 0, by: -1) where candidate.hasSuffix(s.prefix(n)) {
                hold = max(hold, n)
                break
            }
        }
        let safe = String(candidate.dropLast(hold))
        let released = String(safe.dropFirst(text.count))
        text = safe
        pending = Array(candidate.suffix(hold).utf8) + pending[end...]
        return (released, true)
    }

    /// Releases what was held back (the text ended without a stop string).
    mutating func finish() -> String {
        let rest = String(decoding: pending, as: UTF8.self)
        text += rest
        pending = []
        return rest
    }
}
