import Formats
import Foundation
import LoRA
import Models
import TensorCore
import Training

extension ModelSession {
    /// Attaches the adapter at `path` to this session's model, unmerged, in evaluation mode: a
    /// Lorikeet checkpoint (.h5: its recipe rebuilds the base it was trained over) or a PEFT
    /// folder (adapter_config.json + adapter_model.safetensors, applied over the base as stored).
    /// Returns a one-line description for stderr.
    func attachAdapter(_ path: String) throws -> String {
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
                if let expected = archive.strings["base/sha256"], try identity().sha256 != expected {
                    throw CLIError("\(self.path) is not the base \(path) was trained on (SHA-256 differs)")
                }
                let recipe = try Recipe(try RecipeDocument(yaml: yaml, source: path + " (recipe)"))
                adapter = try LoRAAdapter.attach(to: model, recipe: recipe)
                try adapter.load(Checkpoint.adapterTensors(archive), source: path)
                what = "adapter r=\(recipe.lora.rank) on \(adapter.layers.count) modules, base \(recipe.base.rawValue)"
            }
        } catch let e as CLIError { throw e } catch let e as FormatError { throw CLIError(e.description) }
        catch let e as ModelError { throw CLIError(e.description) } catch let e as RecipeError { throw CLIError(e.description) }
        catch { throw CLIError("\(path): \(error)") }
        adapter.setTraining(false)
        return what
    }
}

/// The parts of PEFT's adapter_config.json Lorikeet applies; anything that would change the
/// computation and is not supported (DoRA, biases, extra trained modules) is refused by name.
struct PEFTAdapterConfig {
    let lora: LoRAConfig

    init(folder: String) throws {
        let path = folder + "/adapter_config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): missing (a PEFT adapter folder has adapter_config.json and adapter_model.safetensors)") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw CLIError("\(path): not a JSON object") }
        if let type = json["peft_type"] as? String, type != "LORA" { throw CLIError("\(path): peft_type \(type) is not LoRA") }
        if json["use_dora"] as? Bool == true { throw CLIError("\(path): DoRA adapters are not supported") }
        if let bias = json["bias"] as? String, bias != "none" { throw CLIError("\(path): bias '\(bias)' is not supported (only 'none')") }
        if let extra = json["modules_to_save"] as? [Any], !extra.isEmpty { throw CLIError("\(path): modules_to_save (fully trained modules) is not supported") }
        if json["fan_in_fan_out"] as? Bool == true { throw CLIError("\(path): fan_in_fan_out (Conv1D bases) is not supported") }
        guard let r = json["r"] as? Int, r > 0 else { throw CLIError("\(path): 'r' must be a positive integer") }
        let alpha = (json["lora_alpha"] as? NSNumber)?.floatValue ?? Float(r)
        let targets: LoRAConfig.Targets
        switch json["target_modules"] {
        case let name as String where name == "all-linear": targets = .allLinear
        case let names as [String]: targets = .names(names)
        default: throw CLIError("\(path): target_modules must be a list of module names or \"all-linear\"")
        }
        var layers: Set<Int>?
        switch json["layers_to_transform"] {
        case let i as Int: layers = [i]
        case let list as [Int]: layers = Set(list)
        default: layers = nil
        }
        lora = LoRAConfig(rank: r, alpha: alpha, dropout: 0, rsLoRA: json["use_rslora"] as? Bool ?? false, targets: targets, layers: layers)
    }
}
