import Training
import Formats
import Foundation
import Architectures
import TensorCore
import Tokenization

/// Where the merged weights came from, for the files' names, licenses and model cards.
public struct MergeProvenance: Sendable {
    public var baseName: String
    public var license: String
    /// One line: the adapter file and how it was merged.
    public var adapter: String

    public init(baseName: String, license: String, adapter: String) {
        self.baseName = baseName
        self.license = license
        self.adapter = adapter
    }

    /// The license's entry in Lorikeet's table (kind and one-line summary).
    public var terms: ModelLicense { ModelLicense.identify(license) }

    /// Licenses that let anyone use and redistribute a derived model with attribution only.
    public var isPermissive: Bool { terms.isPermissive }
}

/// The base a merged Hugging Face folder copies its configuration and tokenizer from.
public enum MergeBaseFiles {
    /// A GGUF file: config.json, generation_config.json and the tokenizer are written from its metadata.
    case gguf(GGUFFile, ModelConfig)
    /// A Hugging Face folder: its configuration and tokenizer files are copied.
    case huggingFace(String)
}

extension MergedWeights {
    /// Writes a Hugging Face model folder into `folder` (which must exist): model.safetensors in
    /// `dtype` (rotary rows in Hugging Face order), config.json, generation_config.json, the
    /// tokenizer and a model card naming the base and its license.
    public func writeHuggingFaceFolder(to folder: String, dtype: SafetensorsFile.DType, base: MergeBaseFiles,
                                       provenance: MergeProvenance) throws(ExportError) {
        var tensors: [String: Tensor] = [:]
        for (name, rank) in entries {
            do { tensors[name] = try tensor(name, rank: rank) } catch { throw .model(error) }
        }
        let torchDType = ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.rawValue] ?? "float32"
        do {
            try SafetensorsFile.write(tensors, dtype: dtype, metadata: ["format": "pt"], to: folder + "/model.safetensors")
            switch base {
            case .gguf(let file, let config):
                try Self.writeFiles(gguf: file, config: config, torchDType: torchDType, to: folder)
            case .huggingFace(let source):
                try Self.copyFiles(huggingFace: source, torchDType: torchDType, to: folder)
            }
            try AtomicFile.write(Data(modelCard(provenance, format: "safetensors (\(torchDType))").utf8), to: folder + "/README.md")
        } catch let e as FormatError { throw .format(e) } catch let e as TokenizerError { throw .tokenizer(e) }
        catch let e as ExportError { throw e } catch { throw .unsupported("\(folder): \(error)") }
    }

    func modelCard(_ p: MergeProvenance, format: String) -> String {
        """
        ---
        base_model: \(p.baseName)
        license: \(p.license)
        tags:
        - lorikeet
        - lora
        - merged
        ---
        # \(p.baseName) with a merged LoRA adapter

        \(p.adapter). Written by Lorikeet as \(format); \(adaptedModules.count) projections carry the adapter's update.
        The base model's license (\(p.license)) applies to this merged model.

        License: \(p.terms.line)

        """
    }

    /// config.json, generation_config.json, tokenizer.json and tokenizer_config.json from a
    /// Llama-architecture GGUF's metadata.
    static func writeFiles(gguf file: GGUFFile, config c: ModelConfig, torchDType: String, to folder: String) throws {
        guard c.family == .llama else { throw ExportError.unsupported("\(file.path): config.json can be written for Llama GGUFs only, not \(c.family)") }
        let m = file.metadata
        var rope: [String: Any] = ["rope_type": "default", "rope_theta": Double(c.ropeTheta)]
        switch c.ropeScaling {
        case nil: break
        case .linear(let factor): rope = ["rope_type": "linear", "factor": Double(factor), "rope_theta": Double(c.ropeTheta)]
        case .llama3, .frequencyFactors:
            // GGUF keeps Llama 3 scaling as per-pair divisors only; config.json needs the parameters.
            guard case .llama3(let factor, let low, let high, let original) = c.llama3ScalingReproducingFrequencyFactors ?? c.ropeScaling else {
                throw ExportError.unsupported("\(file.path): its rope_freqs divisors match no Llama 3 RoPE scaling that config.json can express; merge to --format gguf, or onto the base's Hugging Face folder")
            }
            rope = ["rope_type": "llama3", "factor": Double(factor), "low_freq_factor": Double(low), "high_freq_factor": Double(high),
                    "original_max_position_embeddings": original, "rope_theta": Double(c.ropeTheta)]
        }
        var json: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": c.vocabSize, "hidden_size": c.hiddenSize,
            "intermediate_size": c.intermediateSize, "num_hidden_layers": c.layerCount, "num_attention_heads": c.headCount,
            "num_key_value_heads": c.kvHeadCount, "head_dim": c.headDim, "hidden_act": "silu",
            "max_position_embeddings": c.maxPositions, "rms_norm_eps": Double(c.rmsNormEps), "rope_parameters": rope,
            "tie_word_embeddings": c.tieWordEmbeddings, "attention_bias": false, "mlp_bias": false,
            "attention_dropout": 0.0, "use_cache": true, "dtype": torchDType,
        ]
        if c.partialRotaryFactor != 1 { json["partial_rotary_factor"] = Double(c.partialRotaryFactor) }
        var generation: [String: Any] = [:]
        for (key, field) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("padding_token_id", "pad_token_id")] {
            if let id = m["tokenizer.ggml." + key]?.int { json[field] = id; generation[field] = id }
        }
        let (tokenizer, tokenizerConfig) = try TokenizerJSONExport.files(gguf: file, chatTemplate: m["tokenizer.chat_template"]?.string)
        let pretty: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: pretty), to: folder + "/config.json")
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: generation, options: pretty), to: folder + "/generation_config.json")
        try AtomicFile.write(tokenizer, to: folder + "/tokenizer.json")
        try AtomicFile.write(tokenizerConfig, to: folder + "/tokenizer_config.json")
    }

    /// The files of a Hugging Face folder that describe the model rather than hold weights,
    /// copied; config.json gets the dtype written.
    static func copyFiles(huggingFace source: String, torchDType: String, to folder: String) throws {
        let fm = FileManager.default
        guard let data = fm.contents(atPath: source + "/config.json"),
              var config = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FormatError.malformed(path: source + "/config.json", reason: "not a JSON object")
        }
        config["dtype"] = torchDType
        config.removeValue(forKey: "torch_dtype")
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                             to: folder + "/config.json")
        for name in ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                     "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "LICENSE"] {
            if let contents = fm.contents(atPath: source + "/" + name) { try AtomicFile.write(contents, to: folder + "/" + name) }
        }
    }
}
