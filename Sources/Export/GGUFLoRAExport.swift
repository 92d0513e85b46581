import Training
import Formats
import Foundation
import LoRA
import Architectures
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
    public init(checkpoint: Checkpoint, source: String, base: GGUFFile) throws(ExportError) {
        try self.init(try PlainLoRAAdapter(checkpoint: checkpoint, source: source), base: base)
    }

    /// Any plain adapter (a checkpoint's, a converted PiSSA/LoftQ one, a PEFT folder's) for `base`.
    public init(_ adapter: PlainLoRAAdapter, base: GGUFFile) throws(ExportError) {
        let config: ModelConfig
        do { config = try ModelConfig(gguf: base) } catch { throw .model(error) }
        let architecture = base.metadata["general.architecture"]?.string ?? "llama"
        let modules = adapter.modules
        guard !modules.isEmpty else { throw .invalidAdapter("\(adapter.provenance): holds no adapter tensors") }
        var out: [(String, Tensor)] = []
        for module in modules {
            guard let ggufName = GGUFWeightSource.ggufName(module + ".weight", config: config), base.tensor(ggufName) != nil,
                  let aT = adapter.tensors[LoRAAdapter.pefName(module, "A")], var bT = adapter.tensors[LoRAAdapter.pefName(module, "B")] else {
                throw .invalidAdapter("\(adapter.provenance): module \(module) has no tensor in \(base.path) (adapter for another base?)")
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
        let lora = adapter.lora
        let alpha = lora.rsLoRA ? lora.alpha * Float(lora.rank).squareRoot() : lora.alpha
        metadata = [
            ("general.architecture", .string(architecture)),
            ("general.type", .string("adapter")),
            ("general.name", .string(adapter.baseName + " LoRA")),
            ("general.license", .string(adapter.license)),
            ("adapter.type", .string("lora")),
            ("adapter.lora.alpha", .float32(alpha)),
        ]
    }

    public func write(to path: String) throws(ExportError) {
        do { try GGUFFile.write(metadata: metadata, tensors: tensors, to: path) } catch { throw .invalidAdapter(error.description) }
    }
}
