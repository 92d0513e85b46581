import ArgumentParser
import Foundation
import Lorikeet

/// What the model will see: ids or pieces of a text.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show the token ids or pieces a model's tokenizer produces.")

    @Option(help: "A .gguf file, a Hugging Face folder with tokenizer.json, or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Flag(help: "Print ids (the default).") var ids = false
    @Flag(help: "Print the vocabulary pieces instead of ids.") var pieces = false
    @Flag(help: "Treat special-token text (<|im_start|>, …) as plain text, as user data is.") var plainSpecial = false
    @Flag(help: "Prepend the BOS token if the model asks for one.") var bos = false
    @Argument(help: "The text to tokenize.") var text: String

    func run() throws {
        let tokenizer = try ModelText(loading: model).tokenizer
        let encoded: [Int32]
        do { encoded = try tokenizer.encode(text, addBOS: bos ? nil : false, parseSpecial: !plainSpecial) } catch {
            throw CLIError(error.description)
        }
        if pieces {
            print(tokenizer.pieces(encoded).map { $0.debugDescription }.joined(separator: " "))
        } else {
            print(encoded.map(String.init).joined(separator: " "))
        }
        FileHandle.standardError.write(Data("\(encoded.count) tokens\n".utf8))
    }
}
