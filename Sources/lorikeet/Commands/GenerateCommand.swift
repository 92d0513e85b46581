import ArgumentParser
import Foundation
import Formats
import Generation
import Models
import Tokenizers

/// Samples a reply from a model. This first version decodes greedily (temperature 0); the
/// samplers, the KV cache and adapters come with the generation work.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a reply to a prompt with the model's chat template (greedy for now).",
        discussion: "Only the generated text goes to stdout, streamed as it is produced; everything else goes to stderr.")

    @Option(help: "A .gguf file or 'smollm2'.") var model = "smollm2"
    @Option(help: "The user's message.") var prompt: String
    @Option(help: "A system message (the template's default when absent).") var system: String?
    @Option(help: "The most tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; only 0 (greedy) is available in this build.") var temperature: Double = 0
    @Flag(help: "Send the prompt as raw text instead of through the chat template.") var raw = false

    func validate() throws {
        guard temperature == 0 else { throw ValidationError("only --temperature 0 (greedy) is available in this build") }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
    }

    func run() throws {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(model) } catch { throw CLIError(error.description) }
        guard case .gguf(let path) = location else {
            throw CLIError("\(model): generation from a Hugging Face folder is not supported yet (its tokenizer.json is, via lorikeet tokenize); use a GGUF file")
        }
        let file: GGUFFile, decoderModel: DecoderModel, tokenizer: any Tokenizer
        do {
            file = try GGUFFile(path: path)
            decoderModel = try DecoderModel(ggufPath: path)
            tokenizer = try makeTokenizer(gguf: file)
        } catch let e as FormatError { throw CLIError(e.description) } catch let e as ModelError { throw CLIError(e.description) }
        catch let e as TokenizerError { throw CLIError(e.description) }

        let text: String
        if raw {
            text = prompt
        } else {
            guard let source = file.metadata["tokenizer.chat_template"]?.string else {
                throw CLIError("\(path) has no chat template; pass --raw to send the prompt as plain text")
            }
            var messages: [JinjaValue] = []
            if let system { messages.append(.dictionary([("role", .string("system")), ("content", .string(system))])) }
            messages.append(.dictionary([("role", .string("user")), ("content", .string(prompt))]))
            do { text = try ChatTemplate(source: source).render(messages: messages, addGenerationPrompt: true, variables: tokenizer.templateVariables) }
            catch { throw CLIError(error.description) }
        }
        let ids: [Int32]
        do { ids = try tokenizer.encode(text, parseSpecial: !raw) } catch { throw CLIError(error.description) }
        // Stop at end-of-sequence and at the template's end-of-turn token.
        var stop = Set([tokenizer.eos].compactMap { $0 })
        for marker in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"] { if let id = tokenizer.specialTokens[marker] { stop.insert(id) } }

        var pending: [UInt8] = []
        let start = Date()
        let produced = GreedyDecoder(model: decoderModel).generate(prompt: ids, maxTokens: maxTokens, stop: stop) { token in
            guard !stop.contains(token) else { return true }
            pending += tokenizer.tokenBytes(token)
            // Print the longest complete UTF-8 prefix; keep a partial character for later.
            var end = pending.count
            while end > 0, String(validating: pending[..<end], as: UTF8.self) == nil, pending.count - end < 4 { end -= 1 }
            if end > 0 {
                FileHandle.standardOutput.write(Data(pending[..<end]))
                pending.removeFirst(end)
            }
            return true
        }
        if !pending.isEmpty { FileHandle.standardOutput.write(Data(String(decoding: pending, as: UTF8.self).utf8)) }
        FileHandle.standardOutput.write(Data("\n".utf8))
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data(String(format: "[%d prompt tokens, %d generated in %.1f s, greedy, no KV cache yet]\n",
                                                   ids.count, produced.count, seconds).utf8))
    }
}
