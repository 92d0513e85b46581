import Training
import Formats
import Foundation
import LoRA
import TensorCore

/// An adapter as what every export writes: plain LoRA tensors (PEFT names, A [r, I], B [O, r],
/// Hugging Face row order) meant to be added to the original base weights, with the settings
/// that give their scale. A Lorikeet checkpoint and a PEFT folder both become one of these,
/// so the PEFT and llama.cpp writers never care where an adapter came from.
public struct PlainLoRAAdapter {
    /// PEFT name (base_model.model.<module>.lora_{A,B}.weight) → tensor.
    public var tensors: [String: Tensor]
    /// rank, alpha, rsLoRA and targets; `initialization` is always `.default` here (the
    /// tensors apply to the original base).
    public var lora: LoRAConfig
    public var baseName: String
    public var license: String
    /// Where it came from and how it was trained, for model cards.
    public var provenance: String

    public init(tensors: [String: Tensor], lora: LoRAConfig, baseName: String, license: String, provenance: String) {
        self.tensors = tensors
        self.lora = lora
        self.baseName = baseName
        self.license = license
        self.provenance = provenance
    }

    /// Hugging Face module names that carry an adapter, sorted.
    public var modules: [String] {
        let prefix = "base_model.model.", suffix = ".lora_A.weight"
        return tensors.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }
            .map { String($0.dropFirst(prefix.count).dropLast(suffix.count)) }.sorted()
    }

    /// A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) as saved by
    /// `save_pretrained`; what `PEFTAdapterConfig` does not support is refused by name.
    public init(peftFolder folder: String) throws(ExportError) {
        let config = try PEFTAdapterConfig(folder: folder)
        let weights = folder + "/adapter_model.safetensors"
        do { tensors = try SafetensorsFile(path: weights).tensors() } catch { throw .invalidAdapter(error.description) }
        guard !tensors.isEmpty else { throw .invalidAdapter("\(weights): holds no adapter tensors") }
        for name in tensors.keys where !(name.hasSuffix(".lora_A.weight") || name.hasSuffix(".lora_B.weight")) {
            throw .invalidAdapter("\(weights): tensor '\(name)' is not a LoRA A or B matrix (only plain LoRA adapters are supported)")
        }
        lora = config.lora
        baseName = config.baseName
        license = "unknown"
        provenance = "PEFT adapter \((folder as NSString).lastPathComponent) (r=\(lora.rank), alpha=\(lora.alpha))"
    }

    /// A checkpoint's adapter as stored. PiSSA and LoftQ checkpoints are trained over a
    /// rewritten base: they need `init(checkpoint:source:originalBase:)`.
    public init(checkpoint: Checkpoint, source: String) throws(ExportError) {
        let recipe = checkpoint.recipe
        guard !recipe.lora.initialization.rewritesBase else {
            throw .invalidAdapter("\(source): a \(recipe.lora.initialization.rawValue) adapter is trained over a rewritten base; export it with the original base at hand (PEFT's conversion to a rank-2r adapter)")
        }
        try self.init(checkpoint: checkpoint, source: source, tensors: checkpoint.adapterTensors)
    }

    init(checkpoint: Checkpoint, source: String, tensors: [String: Tensor]) throws(ExportError) {
        guard !tensors.isEmpty else { throw .invalidAdapter("\(source): the checkpoint holds no adapter tensors") }
        let recipe = checkpoint.recipe
        var lora = recipe.lora.config
        lora.initialization = .default
        let kinds = Set(tensors.keys.compactMap { $0.split(separator: ".").dropLast(2).last.map(String.init) }).sorted()
        self.init(tensors: tensors, lora: lora, baseName: checkpoint.base.name, license: checkpoint.base.license,
                  provenance: "Trained with Lorikeet (r=\(recipe.lora.rank), alpha=\(Float(recipe.lora.alpha)), \(kinds.joined(separator: ", "))) over a \(recipe.base.rawValue) base.")
        recipeYAML = recipe.yaml
    }

    /// The checkpoint's recipe, for model cards (nil for PEFT folders).
    public var recipeYAML: String?
}
