import ArgumentParser
import Foundation
import Decoding
import Tokenization

/// Samples a reply with the model's chat template. stdout carries only the generated text,
/// streamed as it comes; statistics and everything else go to stderr.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a model (optionally with an adapter), through its chat template.",
        discussion: """
        Only the generated text goes to stdout, streamed as it is produced; statistics go to stderr.
        Example: lorikeet generate --adapter checkpoints/smollm2-foldoc/best.h5 --prompt "What is a monad?"
        """)

    @Option(help: "A .gguf file or 'smollm2'.") var model = "smollm2"
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder, applied unmerged.") var adapter: String?
    @Option(help: "The user's message (or the raw text with --no-template).") var prompt: String?
    @Flag(help: "An interactive conversation on stdin, one user message per line.") var chat = false
    @Option(help: "A system message (the template's default when absent).") var system: String?
    @Flag(name: [.customLong("no-template"), .customLong("raw")], help: "Send the prompt as plain text, not through the chat template.") var noTemplate = false
    @Option(help: "The most tokens to generate per reply.") var maxTokens = 256
    @Option(help: "Sampling temperature (0: greedy).") var temperature: Float = 0.8
    @Option(help: "Keep the k most likely tokens (0: off).") var topK = 40
    @Option(help: "Nucleus sampling: keep the most likely tokens up to this probability (1: off).") var topP: Float = 0.95
    @Option(help: "Drop tokens less likely than this fraction of the most likely one (0: off).") var minP: Float = 0.05
    @Option(help: "Penalty on tokens already seen (1: off).") var repetitionPenalty: Float = 1
    @Option(help: "Seed for sampling.") var seed: UInt64 = 0
    @Option(name: .customLong("stop"), help: "Stop when the reply contains this text (repeatable).") var stopStrings: [String] = []

    var sampling: SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty, seed: seed)
    }

    func validate() throws {
        if let problem = sampling.problem { throw ValidationError(problem) }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard chat != (prompt != nil) else { throw ValidationError("give either --prompt TEXT or --chat") }
        guard !(chat && noTemplate) else { throw ValidationError("--chat needs the chat template; drop --no-template") }
    }

    func run() throws {
        let session = try ModelSession(model)
        if let adapter { note(try session.attachAdapter(adapter)) }
        let generator = Generator(model: session.model)
        if let prompt {
            var messages: [JinjaValue] = []
            if let system { messages.append(Self.message("system", system)) }
            messages.append(Self.message("user", prompt))
            let text = noTemplate ? prompt : try session.renderPrompt(messages)
            _ = try reply(to: text, parseSpecial: !noTemplate, session: session, generator: generator)
            return
        }
        var messages: [JinjaValue] = system.map { [Self.message("system", $0)] } ?? []
        note("chat with \(session.name): one message per line, an empty line or Ctrl-D ends")
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine(), !line.isEmpty else { break }
            messages.append(Self.message("user", line))
            let answer = try reply(to: try session.renderPrompt(messages), parseSpecial: true, session: session, generator: generator)
            messages.append(Self.message("assistant", answer))
        }
    }

    static func message(_ role: String, _ content: String) -> JinjaValue {
        .dictionary([("role", .string(role)), ("content", .string(content))])
    }

    /// Generates and streams one reply to `text`; returns the reply's text.
    func reply(to text: String, parseSpecial: Bool, session: ModelSession, generator: Generator) throws -> String {
        let reply = try session.reply(to: text, parseSpecial: parseSpecial, generator: generator, maxTokens: maxTokens, sampling: sampling,
                                      stopStrings: stopStrings, echo: true)
        let result = reply.result
        let why: String
        switch result.finish {
        case .stopToken: why = "end of turn"
        case .maxTokens: why = "--max-tokens"
        case .caller: why = "stop string"
        case .contextFull: why = "context full"
        }
        note(String(format: "[%d prompt tokens (%d prefilled) in %.2f s, %d generated in %.2f s = %.1f tok/s, %@; stopped: %@]",
                    reply.promptTokens, result.prefilled, result.promptSeconds, reply.generatedTokens, result.decodeSeconds,
                    Double(reply.generatedTokens) / max(result.decodeSeconds, 1e-9), sampling.isGreedy ? "greedy" : "seed \(seed)", why))
        return reply.text
    }
}

/// Streams generated bytes to stdout as complete UTF-8, holding back a partial character and
/// any text that may be the start of a stop string, which is never printed.
struct TextStream {
    let stopStrings: [String]
    /// Whether the text goes to stdout as it comes (false: only collected in `text`).
    let echo: Bool
    private var pending: [UInt8] = []
    private(set) var text = ""

    init(stopStrings: [String], echo: Bool = true) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
        self.echo = echo
    }

    /// Adds a token's bytes; false once a stop string has appeared.
    mutating func append(_ bytes: [UInt8]) -> Bool {
        pending += bytes
        var end = pending.count
        while end > 0, String(validating: pending[..<end], as: UTF8.self) == nil, pending.count - end < 4 { end -= 1 }
        guard end > 0, let complete = String(validating: pending[..<end], as: UTF8.self) else { return true }
        let candidate = text + complete
        if let hit = stopStrings.compactMap({ candidate.range(of: $0)?.lowerBound }).min() {
            emit(String(candidate[..<hit]).dropFirst(text.count))
            text = String(candidate[..<hit])
            pending = []
            return false
        }
        // Hold back the longest tail that could begin a stop string.
        var hold = 0
        for s in stopStrings {
            for n in stride(from: min(s.count - 1, candidate.count), to: 0, by: -1) where candidate.hasSuffix(s.prefix(n)) {
                hold = max(hold, n)
                break
            }
        }
        let safe = candidate.dropLast(hold)
        emit(safe.dropFirst(text.count))
        text = String(safe)
        pending = Array(candidate.suffix(hold).utf8) + pending[end...]
        return true
    }

    mutating func finish() {
        let rest = String(decoding: pending, as: UTF8.self)
        emit(Substring(rest))
        text += rest
        pending = []
        if echo { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }

    private func emit(_ s: Substring) {
        guard echo, !s.isEmpty else { return }
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}
