import ArgumentParser
import Foundation
import Lorikeet

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

    @Option(help: "A .gguf file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b) (default: the base a checkpoint records, else smollm2).") var model: String?
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder, applied unmerged.") var adapter: String?
    @Option(help: "With --adapter: trained (the base encoded as in training, the default) or original (the weights as stored).")
    var onto: AdapterBase = .trained
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

    var options: GenerationOptions {
        GenerationOptions(maxTokens: maxTokens,
                          sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                                    repetitionPenalty: repetitionPenalty, seed: seed),
                          stopStrings: stopStrings)
    }

    func validate() throws {
        if let problem = options.sampling.problem { throw ValidationError(problem) }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard chat != (prompt != nil) else { throw ValidationError("give either --prompt TEXT or --chat") }
        guard !(chat && noTemplate) else { throw ValidationError("--chat needs the chat template; drop --no-template") }
    }

    func run() throws {
        let source = try adapter.map { try AdapterSource.load($0) }
        let base = try BaseModel(loading: model ?? source?.recordedBasePath ?? ModelLocation.embeddedName)
        if let source { note(try base.apply(source, onto: onto).summary) }
        let session = GenerationSession(base)
        if let prompt {
            var messages: [ChatMessage] = []
            if let system { messages.append(.system(system)) }
            messages.append(.user(prompt))
            let text = noTemplate ? prompt : try session.renderPrompt(messages)
            _ = try stream(session.generate(text, parseSpecial: !noTemplate, options: options))
            return
        }
        var messages: [ChatMessage] = system.map { [.system($0)] } ?? []
        note("chat with \(base.name): one message per line, an empty line or Ctrl-D ends")
        while true {
            FileHandle.standardError.write(Data("> ".utf8))
            guard let line = readLine(), !line.isEmpty else { break }
            messages.append(.user(line))
            let answer = try stream(session.reply(to: messages, options: options))
            messages.append(.assistant(answer))
        }
    }

    /// Prints the reply as it is produced, then its statistics on stderr; returns its text.
    func stream(_ generation: TextGeneration) throws -> String {
        let summary = generation.collect { piece in
            FileHandle.standardOutput.write(Data(piece.utf8))
            return true
        }
        FileHandle.standardOutput.write(Data("\n".utf8))
        let why: String
        switch summary.finish {
        case .stopToken: why = "end of turn"
        case .maxTokens: why = "--max-tokens"
        case .caller: why = "stop string"
        case .contextFull: why = "context full"
        }
        note(String(format: "[%d prompt tokens (%d prefilled) in %.2f s, %d generated in %.2f s = %.1f tok/s, %@; stopped: %@]",
                    summary.promptTokens, summary.prefilled, summary.promptSeconds, summary.generatedTokens, summary.decodeSeconds,
                    summary.tokensPerSecond, options.sampling.isGreedy ? "greedy" : "seed \(seed)", why))
        return summary.text
    }
}
