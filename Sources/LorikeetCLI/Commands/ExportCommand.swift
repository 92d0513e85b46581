import ArgumentParser
import Formats
import Foundation
import Architectures
import Export
import Training

/// Takes a trained adapter to the tools people serve models with.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export an adapter as a PEFT folder, a llama.cpp LoRA GGUF, or an Ollama Modelfile folder.",
        discussion: """
        Examples:
          lorikeet export --adapter checkpoints/smollm2-foldoc/best.h5 --format peft --output foldoc-lora
          lorikeet export --adapter checkpoints/smollm2-foldoc/best.h5 --format gguf --output foldoc-lora.gguf
          lorikeet export --adapter checkpoints/smollm2-foldoc/best.h5 --format ollama --output foldoc-ollama
          lorikeet export --adapter my-peft-adapter --format gguf --model base.gguf --output my-adapter.gguf
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft, gguf, ollama }

    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String
    @Option(help: "peft: adapter_config.json + adapter_model.safetensors; gguf: a llama.cpp LoRA file; ollama: a folder with the LoRA GGUF and a Modelfile.")
    var format: Format
    @Option(help: "Output folder (peft, ollama) or .gguf file (gguf).") var output: String
    @Option(help: "The base the adapter applies to (gguf, ollama, and a PiSSA/LoftQ checkpoint's conversion; default: the one a checkpoint was trained on, else smollm2).") var model: String?

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: adapter, isDirectory: &isDirectory) else { throw CLIError("\(adapter): no such adapter file or folder") }
        var archive: HDF5Archive?
        let plain: PlainLoRAAdapter
        do {
            if isDirectory.boolValue {
                plain = try PlainLoRAAdapter(peftFolder: adapter)
            } else {
                let checkpoint = try HDF5Archive(contentsOf: adapter)
                archive = checkpoint
                if try PlainLoRAAdapter.needsOriginalBase(checkpoint: checkpoint, source: adapter) {
                    plain = try PlainLoRAAdapter(checkpoint: checkpoint, source: adapter, originalBase: try originalBase(checkpoint))
                } else {
                    plain = try PlainLoRAAdapter(checkpoint: checkpoint, source: adapter)
                }
            }
        } catch let e as TrainingError { throw CLIError(e.description) } catch let e as FormatError { throw CLIError(e.description) }
        catch let e as ModelError { throw CLIError(e.description) }
        let license = plain.license
        if archive != nil, !["apache-2.0", "mit", "bsd-3-clause"].contains(license.lowercased()) {
            note("note: the base model's license is '\(license)'; it governs how this adapter may be used with it")
        }
        do {
            switch format {
            case .peft:
                let export = try PEFTExport(plain)
                try export.write(to: output)
                note("wrote \(output)/adapter_config.json, adapter_model.safetensors (\(export.tensors.count) tensors), README.md")
            case .gguf:
                let (base, _) = try baseGGUF(archive)
                let export = try GGUFLoRAExport(plain, base: base)
                try export.write(to: output)
                note("wrote \(output) (\(export.tensors.count) tensors) for \(base.path); llama.cpp: llama-cli -m \(base.path) --lora \(output)")
            case .ollama:
                let (base, session) = try baseGGUF(archive)
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                let export = try GGUFLoRAExport(plain, base: base)
                try export.write(to: output + "/adapter.gguf")
                var stops: [String] = []
                for marker in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"] where session.tokenizer.specialTokens[marker] != nil { stops.append(marker) }
                let modelfile = """
                # \(plain.baseName) + a LoRA adapter exported by Lorikeet (base license: \(license)).
                # Ollama takes the chat template from the base GGUF's metadata.
                # Create: ollama create foldoc -f \(output)/Modelfile
                FROM \(base.path)
                ADAPTER ./adapter.gguf
                \(stops.map { "PARAMETER stop \"\($0)\"" }.joined(separator: "\n"))

                """
                try AtomicFile.write(Data(modelfile.utf8), to: output + "/Modelfile")
                note("wrote \(output)/adapter.gguf and \(output)/Modelfile; then: ollama create NAME -f \(output)/Modelfile")
            }
        } catch let e as TrainingError { throw CLIError(e.description) } catch let e as FormatError { throw CLIError(e.description) }
    }

    /// The exact base a PiSSA/LoftQ checkpoint was trained on, loaded afresh: its initial
    /// decomposition is recomputed from it (a different file would give another one).
    func originalBase(_ archive: HDF5Archive) throws -> DecoderModel {
        let argument = model ?? archive.strings["base/path"] ?? ModelLocation.embeddedName
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw CLIError(error.description) }
        if case .gguf(let path) = location, let expected = archive.strings["base/sha256"], try SHA256.hexDigest(ofFile: path) != expected {
            throw CLIError("\(path) is not the base \(adapter) was trained on (SHA-256 differs); a PiSSA/LoftQ adapter is converted against its exact base: pass it with --model")
        }
        note("\(adapter) was trained over a rewritten base (PiSSA/LoftQ): recomputing its initial decomposition from \(argument) to convert it for the original base")
        do { return try location.load() } catch { throw CLIError(error.description) }
    }

    /// The base GGUF: --model, else the file the checkpoint was trained on (checked by hash),
    /// else the embedded model.
    func baseGGUF(_ archive: HDF5Archive?) throws -> (GGUFFile, ModelSession) {
        let argument = model ?? archive?.strings["base/path"] ?? "smollm2"
        let session = try ModelSession(argument)
        if let expected = archive?.strings["base/sha256"], try session.identity().sha256 != expected {
            note("note: \(session.path) is not the exact file the adapter was trained on (SHA-256 differs); its layout must still match")
        }
        do { return (try GGUFFile(path: session.path), session) } catch { throw CLIError(error.description) }
    }
}
