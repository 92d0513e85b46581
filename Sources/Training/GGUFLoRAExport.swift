import Formats
import Foundation
import LoRA
import Models
import TensorCore

/// A checkpoint's adapter as a llama.cpp LoRA GGUF (`llama-cli --lora`, Ollama's ADAPTER):
/// general.type "adapter", adapter.type "lora", adapter.lora.alpha, and per adapted module
/// `<GGUF tensor name>.lora_a` [r, in] and `.lora_b` [out, r] in F32. Q and K of Llama-style
/// GGUFs store their rows permuted for llama.cpp's RoPE, so their lora_b rows are permuted
/// the same way: B·A then lines up with the base it is added to.
public struct GGUFLoRAExport {
    public let metadata: [(String, GGUFValue)]
    public let tensors: [(name: String, tensor: Tensor)]

    /// `base` is the GGUF the adapter will be applied to (its architecture and head counts).
    public init(checkpoint a: HDF5Archive, source: String, base: GGUFFile) throws(TrainingError) {
        guard let yaml = a.strings["recipe"] else { throw .checkpoint("\(source): not a Lorikeet checkpoint (no recipe)") }
        let recipe: Recipe
        do { recipe = try Recipe(try RecipeDocument(yaml: yaml, source: source + " (recipe)")) } catch { throw .checkpoint(error.description) }
        let lora = recipe.lora
        guard !lora.initialization.rewritesBase else {
            throw .checkpoint("\(source): a \(lora.initialization.rawValue) adapter is trained over a rewritten base and cannot be applied to the original GGUF as a plain LoRA")
        }
        let config: ModelConfig
        do { config = try ModelConfig(gguf: base) } catch { throw .checkpoint(error.description) }
        let architecture = base.metadata["general.architecture"]?.string ?? "llama"
        let adapter = Checkpoint.adapterTensors(a)
        let prefix = "base_model.model.", suffix = ".lora_A.weight"
        let modules = adapter.keys.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }
            .map { String($0.dropFirst(prefix.count).dropLast(suffix.count)) }.sorted()
        guard !modules.isEmpty else { throw .checkpoint("\(source): the checkpoint holds no adapter tensors") }
        var out: [(String, Tensor)] = []
        for module in modules {
            guard let ggufName = GGUFWeightSource.ggufName(module + ".weight", config: config), base.tensor(ggufName) != nil,
                  let aT = adapter[LoRAAdapter.pefName(module, "A")], var bT = adapter[LoRAAdapter.pefName(module, "B")] else {
                throw .checkpoint("\(source): module \(module) has no tensor in \(base.path) (adapter for another base?)")
            }
            if let heads = GGUFWeightSource.rotaryPermutedHeads(module, config: config) {
                let (rows, r) = (bT.shape[0], bT.shape[1]), headRows = rows / heads
                let permuted = TensorStorage(count: bT.count)  // [out, r] in GGUF row order
                for row in 0..<rows {
                    let to = GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows)
                    (permuted.base + to * r).update(from: bT.storage.base + row * r, count: r)
                }
                bT = Tensor(shape: bT.shape, storage: permuted)
            }
            let stem = String(ggufName.dropLast(".weight".count)) + ".weight"
            out.append((stem + ".lora_a", aT))
            out.append((stem + ".lora_b", bT))
        }
        tensors = out
        // llama.cpp scales by alpha / r; rsLoRA's alpha / √r becomes an equivalent alpha.
        let alpha = lora.rsLoRA ? lora.alpha * Float(lora.rank).squareRoot() : lora.alpha
        metadata = [
            ("general.architecture", .string(architecture)),
            ("general.type", .string("adapter")),
            ("general.name", .string((a.strings["base/name"] ?? "") + " LoRA")),
            ("general.license", .string(a.strings["base/license"] ?? "unknown")),
            ("adapter.type", .string("lora")),
            ("adapter.lora.alpha", .float32(alpha)),
        ]
    }

    public func write(to path: String) throws(TrainingError) {
        do { try GGUFFile.write(metadata: metadata, tensors: tensors, to: path) } catch { throw .checkpoint(error.description) }
    }
}
