import Formats
import Foundation
import LoRA
import Architectures
import TensorCore
import Export
import Training

extension ModelSession {
    /// Attaches the adapter at `path` to this session's model, unmerged, in evaluation mode: a
    /// Lorikeet checkpoint (.h5: its recipe rebuilds the base it was trained over) or a PEFT
    /// folder (adapter_config.json + adapter_model.safetensors, applied over the base as stored).
    /// Returns a one-line description for stderr.
    func attachAdapter(_ path: String) throws -> String {
        try Self.attachAdapter(path, to: model, basePath: self.path, basePrecision: nil)
    }

    /// The same for any model: `basePath` (a GGUF) is checked against the checkpoint's base hash
    /// when given; `basePrecision` replaces the recipe's encoding of the frozen base (`merge
    /// --onto original` rebuilds it in f32 from the source weights).
    static func attachAdapter(_ path: String, to model: DecoderModel, basePath: String?, basePrecision: BasePrecision?) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("\(path): no such adapter file or folder") }
        let adapter: LoRAAdapter
        let what: String
        do {
            if isDirectory.boolValue {
                let config = try PEFTAdapterConfig(folder: path)
                var rng = RandomGenerator(seed: 0)
                adapter = try LoRAAdapter(attachingTo: model, config: config.lora, rng: &rng)
                let weights = path + "/adapter_model.safetensors"
                try adapter.load(SafetensorsFile(path: weights).tensors(), source: weights)
                what = "PEFT adapter r=\(config.lora.rank) alpha=\(config.lora.alpha) on \(adapter.layers.count) modules, base as stored"
            } else {
                let archive = try HDF5Archive(contentsOf: path)
                guard let yaml = archive.strings["recipe"] else { throw CLIError("\(path): not a Lorikeet checkpoint (no recipe); a PEFT adapter is a folder") }
                if let basePath, let expected = archive.strings["base/sha256"], try SHA256.hexDigest(ofFile: basePath) != expected {
                    throw CLIError("\(basePath) is not the base \(path) was trained on (SHA-256 differs)")
                }
                var recipe = try Recipe(try RecipeDocument(yaml: yaml, source: path + " (recipe)"))
                if let basePrecision { recipe.base = basePrecision }
                adapter = try LoRAAdapter.attach(to: model, recipe: recipe)
                try adapter.load(Checkpoint.adapterTensors(archive), source: path)
                what = "adapter r=\(recipe.lora.rank) on \(adapter.layers.count) modules, base \(recipe.base.rawValue)"
            }
        } catch let e as CLIError { throw e } catch let e as FormatError { throw CLIError(e.description) }
        catch let e as ModelError { throw CLIError(e.description) } catch let e as RecipeError { throw CLIError(e.description) }
        catch let e as TrainingError { throw CLIError(e.description) }
        catch { throw CLIError("\(path): \(error)") }
        adapter.setTraining(false)
        return what
    }

    /// Attaches a plain adapter (PEFT names, applied to the weights as loaded), unmerged, in
    /// evaluation mode.
    static func attach(_ plain: PlainLoRAAdapter, to model: DecoderModel) throws -> String {
        do {
            var rng = RandomGenerator(seed: 0)
            let adapter = try LoRAAdapter(attachingTo: model, config: plain.lora, rng: &rng)
            try adapter.load(plain.tensors, source: plain.provenance)
            adapter.setTraining(false)
            return "adapter r=\(plain.lora.rank) on \(adapter.layers.count) modules (\(plain.provenance))"
        } catch { throw CLIError(error.description) }
    }
}

