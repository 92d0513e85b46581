import Foundation
import Decoding
import Tokenization

/// What `generate` and `eval --generate` share: the stop tokens, the prompt rendering and one
/// reply through `Generator`, so both decode a prompt the same way.
extension ModelSession {
    /// End-of-sequence and the template's end-of-turn tokens.
    var stopTokens: Set<Int32> {
        var stop = Set([tokenizer.eos].compactMap { $0 })
        for marker in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"] {
            if let id = tokenizer.specialTokens[marker] { stop.insert(id) }
        }
        return stop
    }

    /// `messages` through the chat template with its generation prompt: the text a reply continues.
    func renderPrompt(_ messages: [JinjaValue], tools: JinjaValue? = nil) throws -> String {
        guard let template else { throw CLIError("\(path) has no chat template; use --no-template to send plain text") }
        var variables = tokenizer.templateVariables
        if let tools { variables["tools"] = tools }
        do { return try template.render(messages: messages, addGenerationPrompt: true, variables: variables) } catch {
            throw CLIError(error.description)
        }
    }

    /// One reply and how it went.
    struct Reply {
        var text: String
        /// Prompt tokens after encoding.
        var promptTokens: Int
        /// Tokens generated, the stop token not counted.
        var generatedTokens: Int
        var result: Generator.Result
    }

    /// Generates one reply to `text` (special tokens parsed when `parseSpecial`), cut at the
    /// first of `stopStrings`; with `echo` the reply streams to stdout as it is produced.
    func reply(to text: String, parseSpecial: Bool, generator: Generator, maxTokens: Int, sampling: SamplingOptions,
               stopStrings: [String] = [], echo: Bool) throws -> Reply {
        let ids: [Int32]
        do { ids = try tokenizer.encode(text, parseSpecial: parseSpecial) } catch { throw CLIError(error.description) }
        var stream = TextStream(stopStrings: stopStrings, echo: echo)
        let result = generator.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, stop: stopTokens) { token in
            stream.append(tokenizer.decodeBytes([token]))
        }
        stream.finish()
        var produced = result.tokens.count
        if case .stopToken = result.finish { produced -= 1 }
        return Reply(text: stream.text, promptTokens: ids.count, generatedTokens: produced, result: result)
    }
}
