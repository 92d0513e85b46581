import ArgumentParser
import Formats
import Foundation
import Training

/// Takes a trained adapter to the tools people serve models with.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export an adapter as a PEFT folder (Hugging Face); GGUF LoRA and Ollama come next.",
        discussion: "Example: lorikeet export --adapter checkpoints/smollm2-foldoc/best.h5 --format peft --output foldoc-lora")

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft, gguf, ollama }

    @Option(help: "A Lorikeet checkpoint (.h5).") var adapter: String
    @Option(help: "peft (adapter_config.json + adapter_model.safetensors); gguf and ollama are not in this build yet.") var format: Format
    @Option(help: "Output folder.") var output: String

    func run() throws {
        guard format == .peft else { throw CLIError("--format \(format.rawValue) is not available in this build yet (merge/export issue); use --format peft") }
        let archive: HDF5Archive
        do { archive = try HDF5Archive(contentsOf: adapter) } catch { throw CLIError(error.description) }
        do {
            let export = try PEFTExport(checkpoint: archive, source: adapter)
            try export.write(to: output)
            note("wrote \(output)/adapter_config.json, adapter_model.safetensors (\(export.tensors.count) tensors), README.md")
            if let license = archive.strings["base/license"], !["apache-2.0", "mit", "bsd-3-clause"].contains(license.lowercased()) {
                note("note: the base model's license is '\(license)'; it governs how this adapter may be used with it")
            }
        } catch { throw CLIError(error.description) }
    }
}
