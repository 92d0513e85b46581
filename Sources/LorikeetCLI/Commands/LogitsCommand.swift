import ArgumentParser
import Formats
import Foundation
import Architectures
import TensorCore

/// Prompt logits written to a file, for verification scripts that compare Lorikeet's numbers
/// with another implementation's (scripts/verify/merge_parity.py). Hidden from --help: it is a
/// tool for checking, not part of a user's day.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Write the logits of a prompt's token ids (verification).", shouldDisplay: false)

    @Option(help: "A .gguf file, a Hugging Face folder or 'smollm2'.") var model = "smollm2"
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder, applied unmerged.") var adapter: String?
    @Option(help: "With a checkpoint: original keeps the base as stored (decoded to f32), trained encodes it as the recipe says.")
    var onto: MergeCommand.Onto = .trained
    @Option(help: "Comma-separated token ids.") var ids: String
    @Option(help: "Output .safetensors file with 'logits' [T, V].") var output: String

    func run() throws {
        let tokens = ids.split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !tokens.isEmpty else { throw CLIError("--ids: expected comma-separated token ids") }
        let location: ModelLocation, loaded: DecoderModel
        do {
            location = try ModelLocation.resolve(model)
            loaded = try location.load()
        } catch { throw CLIError(error.description) }
        guard tokens.allSatisfy({ $0 >= 0 && Int($0) < loaded.config.vocabSize }) else {
            throw CLIError("--ids: every id must be below the vocabulary size \(loaded.config.vocabSize)")
        }
        if let adapter {
            let basePath: String? = if case .gguf(let path) = location { path } else { nil }
            note(try ModelSession.attachAdapter(adapter, to: loaded, basePath: basePath, basePrecision: onto == .original ? .f32 : nil))
        }
        let t = tokens.count
        let logits = noGrad {
            loaded.logits(ids: IntTensor(shape: [1, t], scalars: tokens), positions: IntTensor(shape: [1, t], scalars: (0..<Int32(t)).map { $0 }))
        }
        do { try SafetensorsFile.write(["logits": logits.reshaped([t, loaded.config.vocabSize])], to: output) } catch {
            throw CLIError(error.description)
        }
    }
}
