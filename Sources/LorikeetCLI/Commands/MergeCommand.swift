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
          lorikeet merge --adapter checkpoints/smollm2-foldoc/best.h5 --output foldoc.Q4_K_M.gguf --format gguf --quant Q4_K_M
        """)

    enum DType: String, ExpressibleByArgument, CaseIterable { case f32, f16, bf16 }

    @Option(help: "The base: a GGUF file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b) (default: the base a checkpoint was trained on).")
    var model: String?
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String
    @Option(help: "Output folder (safetensors) or .gguf file (gguf).") var output: String
    @Option(help: "safetensors: a Hugging Face folder transformers loads; gguf: a file llama.cpp and Ollama load.")
    var format: MergeRequest.Format
    @Option(help: "safetensors weight type (f32, f16, bf16).") var dtype: DType = .f16
    @Option(help: "gguf encoding, case-insensitive: f32, f16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q5_0, Q5_1, Q4_0, Q4_1 (llama.cpp's type per tensor, byte-equal to llama-quantize of the f16 merge) or source (each tensor in the base file's type); 1-D tensors stay f32.")
    var quant: GGUFMergeEncoding = .f16
    @Option(help: "trained: the base the adapter was trained against (default); original: the weights as stored.")
    var onto: AdapterBase = .trained
    @Flag(help: "Replace an existing output.") var force = false
    @Option(name: .customLong("eval-data"), help: "After a quantized gguf merge, report the held-out loss of base, adapter and merged file on this JSONL file (default: a checkpoint's validation set).")
    var evalData: String?
    @Option(name: .customLong("eval-limit"), help: "Evaluate only the first N examples of --eval-data (0: all).") var evalLimit = 0
    @Flag(name: .customLong("no-eval"), help: "Skip the merge-quality report.") var noEval = false

    func run() throws {
        var request = MergeRequest(adapter: adapter, model: model, output: output, format: format)
        request.dtype = switch dtype { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
        request.quant = quant
        request.onto = onto
        request.force = force
        request.evalData = evalData
        request.evalLimit = evalLimit
        request.measureQuality = !noEval
        if evalLimit < 0 { throw ValidationError("--eval-limit must be 0 (all) or positive") }
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
            note("wrote \(output) (\(quant.rawValue.uppercased()); \(result.mergedProjections) projections merged, license \(result.license)); llama.cpp: llama-cli -m \(output)")
        }
        if let quality = result.quality { render(quality) }
        if let reason = result.qualityUnavailable { note("no merge-quality report: \(reason)") }
    }

    /// The three losses, the share of the adapter's gain the quantized file lost, and the way
    /// to keep the adapter exact when that share is large.
    func render(_ q: MergeQuality) {
        func f(_ x: Double) -> String { String(format: "%.4f", x) }
        note("merge quality on \(q.data) (\(q.examples) examples, \(q.trainedTokens) tokens): held-out loss")
        note("  base model            \(f(q.baseLoss))")
        note("  adapter (unmerged)    \(f(q.adapterLoss))")
        note("  merged \(quant.rawValue.uppercased().padding(toLength: 14, withPad: " ", startingAt: 0)) \(f(q.mergedLoss))")
        guard let share = q.erasedShare else {
            note("  the adapter does not lower the loss on this data (gain \(f(q.gain))), so there is no gain to keep")
            return
        }
        note("  quantizing kept \(String(format: "%.0f", (1 - share) * 100))% of the adapter's gain (\(f(q.gain)) nats)")
        if q.erasesTooMuch {
            note("warning: quantizing erased \(String(format: "%.0f", share * 100))% of the adapter's gain (more than \(Int(MergeQuality.erasedShareLimit * 100))%). "
                 + "Keep the adapter exact instead: lorikeet export --adapter \(adapter) --format gguf --output adapter.gguf, "
                 + "then llama-cli -m BASE.gguf --lora adapter.gguf (or a larger --quant such as Q8_0)")
        }
    }
}

extension MergeRequest.Format: ExpressibleByArgument {}
extension GGUFMergeEncoding: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}
