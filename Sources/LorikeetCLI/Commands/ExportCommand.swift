import ArgumentParser
import Foundation
import Lorikeet

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

    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String
    @Option(help: "peft: adapter_config.json + adapter_model.safetensors; gguf: a llama.cpp LoRA file; ollama: a folder with the LoRA GGUF and a Modelfile.")
    var format: ExportRequest.Format
    @Option(help: "Output folder (peft, ollama) or .gguf file (gguf).") var output: String
    @Option(help: "The base the adapter applies to (gguf, ollama, and a PiSSA/LoftQ checkpoint's conversion; default: the one a checkpoint was trained on, else smollm2).") var model: String?
    @Flag(help: "Replace an existing output.") var force = false

    func run() throws {
        var request = ExportRequest(adapter: adapter, format: format, output: output, model: model)
        request.force = force
        let result = try request.run()
        if result.converted {
            note("\(adapter) was trained over a rewritten base (PiSSA/LoftQ): converted to a plain rank-2r adapter for the original base")
        }
        note("license: \(result.licenseTerms.line)")
        if !result.licenseIsPermissive {
            note("note: the base model's license governs how this adapter may be used with it")
        }
        if result.baseDiffers, let base = result.basePath {
            note("note: \(base) is not the exact file the adapter was trained on (SHA-256 differs); its layout must still match")
        }
        switch format {
        case .peft:
            note("wrote \(output)/adapter_config.json, adapter_model.safetensors (\(result.tensors) tensors), README.md")
        case .gguf:
            note("wrote \(output) (\(result.tensors) tensors) for \(result.basePath ?? ""); llama.cpp: llama-cli -m \(result.basePath ?? "BASE.gguf") --lora \(output)")
        case .ollama:
            note("wrote \(output)/adapter.gguf and \(output)/Modelfile; then: ollama create NAME -f \(output)/Modelfile")
        }
    }
}

extension ExportRequest.Format: ExpressibleByArgument {}
