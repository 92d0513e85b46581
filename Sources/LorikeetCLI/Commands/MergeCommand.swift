import ArgumentParser
import Foundation
import Lorikeet

/// Folds an adapter into its base so that tools without LoRA support load one model.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge an adapter into its base model (safetensors folder or GGUF).",
        discussion: """
        W' = W + scale·B·A for every adapted projection. --onto trained (the default) adds the
        update to the base as the adapter was trained against (a checkpoint's NF4/Q8_0/… encoding),
        the model training measured; --onto original adds it to the weights as stored. generate and
        eval take the same flag with the same default.

        Examples:
          lorikeet merge --adapter checkpoints/smollm2-foldoc/best.h5 --output foldoc-merged --format safetensors
          lorikeet merge --model smollm2 --adapter foldoc-lora --output foldoc.Q8_0.gguf --format gguf --quant q8_0
        """)

    enum DType: String, ExpressibleByArgument, CaseIterable { case f32, f16, bf16 }

    @Option(help: "The base: a GGUF file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b) (default: the base a checkpoint was trained on).")
    var model: String?
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String
    @Option(help: "Output folder (safetensors) or .gguf file (gguf).") var output: String
    @Option(help: "safetensors: a Hugging Face folder transformers loads; gguf: a file llama.cpp and Ollama load.")
    var format: MergeRequest.Format
    @Option(help: "safetensors weight type (f32, f16, bf16).") var dtype: DType = .f16
    @Option(help: "gguf weight type (f32, f16, q8_0, q4_0); 1-D tensors stay f32.") var quant: GGUFMergeEncoding = .f16
    @Option(help: "trained: the base the adapter was trained against (default); original: the weights as stored.")
    var onto: AdapterBase = .trained
    @Flag(help: "Replace an existing output.") var force = false

    func run() throws {
        var request = MergeRequest(adapter: adapter, model: model, output: output, format: format)
        request.dtype = switch dtype { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
        request.quant = quant
        request.onto = onto
        request.force = force
        let result = try request.run()
        if onto == .trained, result.adapter.onto == .original {
            note("note: a PEFT adapter does not say which quantized base it was trained against; merged onto the weights as stored")
        }
        note("license: \(result.licenseTerms.line)")
        if !result.licenseIsPermissive {
            note("note: the merged model is a derivative of the base and carries the same license")
        }
        switch format {
        case .safetensors:
            note("wrote \(output)/ (model.safetensors \(dtype.rawValue), config.json, tokenizer, README.md; \(result.mergedProjections) projections merged, license \(result.license))")
        case .gguf:
            note("wrote \(output) (\(quant.rawValue); \(result.mergedProjections) projections merged, license \(result.license)); llama.cpp: llama-cli -m \(output)")
        }
    }
}

extension MergeRequest.Format: ExpressibleByArgument {}
extension GGUFMergeEncoding: ExpressibleByArgument {}
