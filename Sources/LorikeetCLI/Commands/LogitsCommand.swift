import ArgumentParser
import Foundation
import Lorikeet

/// The logits of a sequence of token ids, as a safetensors file: what the verification scripts
/// compare with transformers and llama.cpp.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Write the logits of a prompt's token ids (verification).", shouldDisplay: false)

    @Option(help: "A .gguf file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder, applied unmerged.") var adapter: String?
    @Option(help: "With a checkpoint: trained encodes the base as the recipe says (default), original keeps it as stored.")
    var onto: AdapterBase = .trained
    @Option(help: "Comma-separated token ids.") var ids: String
    @Option(help: "Output .safetensors file with 'logits' [T, V].") var output: String

    func run() throws {
        let tokens = ids.split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !tokens.isEmpty else { throw CLIError("--ids: expected comma-separated token ids") }
        let base = try BaseModel(loading: model, requiresTokenizer: false)
        if let adapter { note(try base.apply(AdapterSource.load(adapter), onto: onto).summary) }
        let logits = try base.logits(ids: tokens)
        do { try SafetensorsFile.write(["logits": logits], to: output) } catch { throw CLIError(error.description) }
    }
}
