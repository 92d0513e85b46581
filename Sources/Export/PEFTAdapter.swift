import Training
import Formats
import Foundation
import LoRA
import TensorCore

/// A checkpoint's adapter as a PEFT folder: `adapter_config.json` + `adapter_model.safetensors`
/// (+ a model card naming the base and its license), which `PeftModel.from_pretrained` loads.
public struct PEFTExport {
    /// adapter_config.json's text.
    public let config: String
    /// Tensors by PEFT name (base_model.model.<module>.lora_{A,B}.weight).
    public let tensors: [String: Tensor]
    /// README.md: base, license, how it was trained.
    public let modelCard: String

    public init(checkpoint: Checkpoint, source: String) throws(ExportError) {
        try self.init(try PlainLoRAAdapter(checkpoint: checkpoint, source: source))
    }

    /// Any plain adapter (a checkpoint's, a converted PiSSA/LoftQ one, a PEFT folder's).
    public init(_ adapter: PlainLoRAAdapter) throws(ExportError) {
        tensors = adapter.tensors
        let lora = adapter.lora
        // PEFT stores the resolved module names, also for "all-linear".
        let kinds = Set(adapter.modules.compactMap { $0.split(separator: ".").last.map(String.init) }).sorted()
        var json: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank, "lora_alpha": Double(lora.alpha),
            "lora_dropout": Double(lora.dropout), "use_rslora": lora.rsLoRA, "target_modules": kinds, "bias": "none",
            "fan_in_fan_out": false, "init_lora_weights": true, "inference_mode": true, "use_dora": false,
            "base_model_name_or_path": adapter.baseName, "modules_to_save": NSNull(),
            "layers_to_transform": lora.layers.map { Array($0).sorted() as Any } ?? NSNull(),
        ]
        json["revision"] = NSNull()
        do {
            let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            config = String(decoding: data, as: UTF8.self) + "\n"
        } catch { throw .invalidAdapter("\(adapter.provenance): cannot encode adapter_config.json (\(error.localizedDescription))") }
        let recipe = adapter.recipeYAML.map { "\n\nTraining recipe:\n\n```yaml\n\($0.trimmingCharacters(in: .newlines))\n```" } ?? ""
        modelCard = """
        ---
        base_model: \(adapter.baseName)
        library_name: peft
        license: \(adapter.license)
        ---
        # LoRA adapter for \(adapter.baseName)

        \(adapter.provenance) \
        The base model's license (\(adapter.license)) applies to its use with this adapter.

        License: \(ModelLicense.identify(adapter.license).line)\(recipe)

        """
    }

    /// Writes the three files into `folder` (created if needed), each atomically. For a folder
    /// that appears whole or not at all, write into `AtomicFolder.create`'s partial folder.
    public func write(to folder: String) throws(ExportError) {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: folder + "/adapter_model.safetensors")
            try AtomicFile.write(Data(config.utf8), to: folder + "/adapter_config.json")
            try AtomicFile.write(Data(modelCard.utf8), to: folder + "/README.md")
        } catch let error as FormatError { throw .format(error) } catch {
            throw .invalidAdapter("\(folder): cannot create the folder (\(error.localizedDescription))")
        }
    }
}

/// The parts of PEFT's adapter_config.json Lorikeet applies; anything that would change the
/// computation and is not supported (DoRA, biases, extra trained modules) is refused by name.
public struct PEFTAdapterConfig {
    public let lora: LoRAConfig
    /// base_model_name_or_path ("" when absent).
    public let baseName: String

    public init(folder: String) throws(ExportError) {
        let path = folder + "/adapter_config.json"
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalidAdapter("\(path): missing (a PEFT adapter folder has adapter_config.json and adapter_model.safetensors)") }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw .invalidAdapter("\(path): not a JSON object") }
        if let type = json["peft_type"] as? String, type != "LORA" { throw .invalidAdapter("\(path): peft_type \(type) is not LoRA") }
        if json["use_dora"] as? Bool == true { throw .invalidAdapter("\(path): DoRA adapters are not supported") }
        if let bias = json["bias"] as? String, bias != "none" { throw .invalidAdapter("\(path): bias '\(bias)' is not supported (only 'none')") }
        if let extra = json["modules_to_save"] as? [Any], !extra.isEmpty { throw .invalidAdapter("\(path): modules_to_save (fully trained modules) is not supported") }
        if json["fan_in_fan_out"] as? Bool == true { throw .invalidAdapter("\(path): fan_in_fan_out (Conv1D bases) is not supported") }
        guard let r = json["r"] as? Int, r > 0 else { throw .invalidAdapter("\(path): 'r' must be a positive integer") }
        let alpha = (json["lora_alpha"] as? NSNumber)?.floatValue ?? Float(r)
        let targets: LoRAConfig.Targets
        switch json["target_modules"] {
        case let name as String where name == "all-linear": targets = .allLinear
        case let names as [String]: targets = .names(names)
        default: throw .invalidAdapter("\(path): target_modules must be a list of module names or \"all-linear\"")
        }
        var layers: Set<Int>?
        switch json["layers_to_transform"] {
        case let i as Int: layers = [i]
        case let list as [Int]: layers = Set(list)
        default: layers = nil
        }
        baseName = json["base_model_name_or_path"] as? String ?? ""
        lora = LoRAConfig(rank: r, alpha: alpha, dropout: 0, rsLoRA: json["use_rslora"] as? Bool ?? false, targets: targets, layers: layers)
    }
}
