import Architectures
import Foundation
import LoRA
import TensorCore

/// An adapter loaded as data for serving many adapters over shared base weights.
public struct LoadedAdapterWeights {
    /// The adapter's A, B and scale per projection.
    public let weights: AdapterWeights
    /// Which base weights it adds to: `source` (the file's weights as stored, what PEFT
    /// adapters and `quantization.base: source` checkpoints were trained over), `nf4`, `q8_0`,
    /// `f32` (the deterministic re-encodings a checkpoint's recipe asks for), or a key of its own
    /// for PiSSA/LoftQ, whose residual base belongs to that adapter alone. Adapters with the same
    /// key can share one decoder.
    public let representation: String
    /// Those base weights, without the adapter (one copy to share per representation).
    public let decoder: DecoderModel
    /// What was applied, for a log line.
    public let applied: AppliedAdapter
}

extension BaseModel {
    /// The representation key of this model's own weights as loaded.
    public static let sourceRepresentation = BasePrecision.source.rawValue

    /// Loads `source` as ``apply(_:onto:)`` with `.trained` does (so replies equal
    /// `lorikeet generate`'s), over a transient copy of this base, then takes the adapter's
    /// weights out of that copy: the copy, its LoRA layers unwrapped, is the base the adapter
    /// adds to. A caller that already holds a decoder of the same ``LoadedAdapterWeights/representation``
    /// drops it.
    public func loadAdapterWeights(_ source: AdapterSource) throws(LorikeetError) -> LoadedAdapterWeights {
        let copy = try BaseModel(location: location, requiresTokenizer: false)
        let applied = try copy.apply(source, onto: .trained)
        var updates: [String: LowRankUpdate] = [:]
        copy.model.replaceLinears { name, layer in
            guard let lora = layer as? LoRALinear else { return layer }
            updates[name] = LowRankUpdate(a: lora.a, b: lora.b, scale: lora.scale, mask: nil)
            return lora.base
        }
        let representation: String
        switch source {
        case .peft: representation = Self.sourceRepresentation
        case .checkpoint(let checkpoint, let path):
            representation = checkpoint.recipe.lora.initialization.rewritesBase
                ? "residual of \(path) (\(UUID().uuidString))" : checkpoint.recipe.base.rawValue
        }
        return LoadedAdapterWeights(weights: AdapterWeights(updates: updates), representation: representation, decoder: copy.model,
                                    applied: applied)
    }
}
