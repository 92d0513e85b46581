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
    @Option(help: "Read the text from this UTF-8 file ('-': standard input) instead of the argument (long texts exceed the argument limit).")
    var file: String?
    @Argument(help: "The text to tokenize.") var text: String?

    func validate() throws {
        guard (text == nil) != (file == nil) else { throw ValidationError("give the text either as an argument or with --file, not both") }
    }

    func run() throws {
        let tokenizer = try ModelText(loading: model).tokenizer
        let encoded: [Int32]
        do {
            if let file {
                let contents = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
                guard let data = contents else { throw CLIError("\(file): cannot read the file") }
                encoded = try tokenizer.encode(utf8: [UInt8](data), addBOS: bos ? nil : false, parseSpecial: !plainSpecial)
            } else {
                encoded = try tokenizer.encode(text ?? "", addBOS: bos ? nil : false, parseSpecial: !plainSpecial)
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError((file.map { "\($0): " } ?? "") + "\(error)")
        }
        if pieces {
            print(tokenizer.pieces(encoded).map { $0.debugDescription }.joined(separator: " "))
        } else {
            print(encoded.map(String.init).joined(separator: " "))
        }
        FileHandle.standardError.write(Data("\(encoded.count) tokens\n".utf8))
    }
}
