import Architectures
import Export
import Foundation
import LoRA
import TensorCore
import Training

/// Where an adapter comes from: a Lorikeet checkpoint (`.h5`) or a PEFT folder
/// (`adapter_config.json` + `adapter_model.safetensors`).
public enum AdapterSource {
    /// A training checkpoint: its recipe says how the base was encoded while training.
    case checkpoint(Checkpoint, path: String)
    /// A PEFT adapter, trained elsewhere over the base's original weights.
    case peft(PlainLoRAAdapter, path: String)

    /// Reads the adapter at `path`: a folder is a PEFT adapter, a file a Lorikeet checkpoint.
    public static func load(_ path: String) throws(LorikeetError) -> AdapterSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .model("\(path): no such adapter file or folder")
        }
        if isDirectory.boolValue {
            do { return .peft(try PlainLoRAAdapter(peftFolder: path), path: path) } catch { throw .model(error.description) }
        }
        do { return .checkpoint(try Checkpoint(contentsOf: path), path: path) } catch { throw .model(error.description) }
    }

    /// The adapter file or folder.
    public var path: String {
        switch self {
        case .checkpoint(_, let path), .peft(_, let path): return path
        }
    }

    /// The checkpoint, when this is one.
    public var checkpoint: Checkpoint? {
        if case .checkpoint(let c, _) = self { return c }
        return nil
    }

    /// The base file this adapter was trained on, as its checkpoint records it (nil for PEFT).
    public var recordedBasePath: String? {
        guard let path = checkpoint?.base.path, !path.isEmpty else { return nil }
        return path
    }
}

/// Which weights an adapter is added to: one rule for `generate`, `eval`, `merge` and the library.
public enum AdapterBase: String, Sendable, CaseIterable {
    /// The base as the adapter was trained against: a checkpoint's recipe re-encodes it exactly
    /// as in training (NF4, Q8_0, f32, or the file's own blocks; PiSSA/LoftQ residuals rebuilt),
    /// so the result is the model training measured. The default.
    case trained
    /// The weights as stored in the base file. A PiSSA/LoftQ checkpoint is first converted to the
    /// plain rank-2r adapter PEFT would export for those weights. PEFT adapters (which record no
    /// training encoding) always go over the weights as stored.
    case original
}

/// What an applied adapter is, for a one-line report.
public struct AppliedAdapter: Sendable, Equatable {
    /// The adapter file or folder.
    public var path: String
    /// LoRA rank (2r for a PiSSA/LoftQ checkpoint converted for the original weights).
    public var rank: Int
    /// LoRA alpha; the update is scaled by alpha/r (alpha/√r with rsLoRA).
    public var alpha: Float
    /// Projections that carry the adapter.
    public var modules: Int
    /// The weights it was added to: "nf4", "as stored", …
    public var baseWeights: String
    /// The rule that chose those weights.
    public var onto: AdapterBase

    /// One line for a log.
    public var summary: String {
        "adapter \((path as NSString).lastPathComponent): r=\(rank) alpha=\(alpha) on \(modules) modules, over the base \(baseWeights)"
    }
}

extension BaseModel {
    /// Adds `adapter` to this model, unmerged, in evaluation mode, over the weights `onto`
    /// chooses. A checkpoint is refused over a base whose SHA-256 differs from the one it
    /// recorded (an adapter only fits the exact weights it was trained against).
    @discardableResult
    public func apply(_ adapter: AdapterSource, onto: AdapterBase = .trained) throws(LorikeetError) -> AppliedAdapter {
        guard self.adapter == nil else { throw .invalidRequest("\(path) already carries an adapter; load the base again to apply another") }
        let applied: AppliedAdapter
        switch adapter {
        case .peft(let plain, let path):
            try attach(plain)
            applied = AppliedAdapter(path: path, rank: plain.lora.rank, alpha: plain.lora.alpha, modules: plain.modules.count,
                                     baseWeights: "as stored", onto: .original)
        case .checkpoint(let checkpoint, let path):
            try checkBase(checkpoint, adapterPath: path)
            let recipe = checkpoint.recipe
            if onto == .original {
                let plain: PlainLoRAAdapter
                if PlainLoRAAdapter.needsOriginalBase(checkpoint) {
                    // The decomposition is recomputed on a fresh copy of the exact base.
                    let original = try BaseModel(location: location, requiresTokenizer: false)
                    plain = try lorikeet { try PlainLoRAAdapter(checkpoint: checkpoint, source: path, originalBase: original.model) }
                } else {
                    plain = try lorikeet { try PlainLoRAAdapter(checkpoint: checkpoint, source: path) }
                }
                try attach(plain)
                applied = AppliedAdapter(path: path, rank: plain.lora.rank, alpha: plain.lora.alpha, modules: plain.modules.count,
                                         baseWeights: "as stored", onto: .original)
            } else {
                let lora = try lorikeet { try LoRAAdapter.attach(to: model, recipe: recipe) }
                try lorikeet { try lora.load(checkpoint.adapterTensors, source: path) }
                lora.setTraining(false)
                applied = AppliedAdapter(path: path, rank: recipe.lora.rank, alpha: Float(recipe.lora.alpha), modules: lora.layers.count,
                                         baseWeights: recipe.base.rawValue, onto: .trained)
            }
        }
        self.adapter = applied
        return applied
    }

    /// Attaches plain LoRA tensors (PEFT names) over the weights as loaded.
    func attach(_ plain: PlainLoRAAdapter) throws(LorikeetError) {
        var rng = RandomGenerator(seed: 0)
        let lora = try lorikeet { try LoRAAdapter(attachingTo: model, config: plain.lora, rng: &rng) }
        try lorikeet { try lora.load(plain.tensors, source: plain.provenance) }
        lora.setTraining(false)
    }

    /// Refuses a checkpoint trained over other weights than this file's.
    func checkBase(_ checkpoint: Checkpoint, adapterPath: String) throws(LorikeetError) {
        let expected = checkpoint.base.sha256
        guard !expected.isEmpty else { return }
        let actual = try sha256()
        guard actual == expected else {
            throw .model("\(path) is not the base \(adapterPath) was trained on (SHA-256 \(actual.prefix(12))…, the checkpoint expects \(expected.prefix(12))… from \(checkpoint.base.path))")
        }
    }

    /// Re-encodes the frozen base (`nf4`, `q8_0`, `f32`) to measure what an encoding costs.
    public func reencode(as precision: BasePrecision) throws(LorikeetError) {
        guard adapter == nil else { throw .invalidRequest("re-encoding applies to a base model alone; an adapter's checkpoint fixes its base encoding") }
        try lorikeet { try model.quantizeBase(to: precision) }
    }
}
