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
            var tokenizerNote: String?
            switch base {
            case .gguf(let file, let config):
                tokenizerNote = try Self.writeFiles(gguf: file, config: config, torchDType: torchDType, to: folder)
            case .huggingFace(let source):
                try Self.copyFiles(huggingFace: source, torchDType: torchDType, to: folder)
            }
            var card = modelCard(provenance, format: "safetensors (\(torchDType))")
            if let tokenizerNote { card += "\nTokenizer: \(tokenizerNote).\n" }
            try AtomicFile.write(Data(card.utf8), to: folder + "/README.md")
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
    /// GGUF's metadata. The tokenizer files are written for byte-level BPE vocabularies (Llama 3,
    /// SmolLM2, Qwen2) and Gemma's SentencePiece one; other SentencePiece vocabularies (Llama 2,
    /// Mistral, Phi-3) have no tokenizer.json writer yet, so the folder then holds the model only
    /// and the returned note says so.
    @discardableResult
    static func writeFiles(gguf file: GGUFFile, config c: ModelConfig, torchDType: String, to folder: String) throws -> String? {
        let m = file.metadata
        var json = try huggingFaceConfig(c, path: file.path)
        json["dtype"] = torchDType
        var generation: [String: Any] = [:]
        for (key, field) in [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("padding_token_id", "pad_token_id")] {
            if let id = m["tokenizer.ggml." + key]?.int { json[field] = id; generation[field] = id }
        }
        let pretty: JSONSerialization.WritingOptions = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: pretty), to: folder + "/config.json")
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: generation, options: pretty), to: folder + "/generation_config.json")
        guard TokenizerJSONExport.canWrite(gguf: file) else {
            return "no tokenizer files: the base's '\(m["tokenizer.ggml.model"]?.string ?? "none")' vocabulary of architecture '\(m["general.architecture"]?.string ?? "none")' cannot be written as tokenizer.json by Lorikeet yet; copy tokenizer.json and tokenizer_config.json from the base model's Hugging Face repository"
        }
        // The file's own template, else the one Lorikeet uses for this architecture (Gemma 3
        // base files carry none), so the folder chats as the GGUF does.
        let template = m["tokenizer.chat_template"]?.string ?? ChatTemplate.builtInSource(architecture: m["general.architecture"]?.string)
        let (tokenizer, tokenizerConfig) = try TokenizerJSONExport.files(gguf: file, chatTemplate: template)
        try AtomicFile.write(tokenizer, to: folder + "/tokenizer.json")
        try AtomicFile.write(tokenizerConfig, to: folder + "/tokenizer_config.json")
        return nil
    }

    /// The model part of a transformers `config.json` (transformers 5 spelling: `rope_parameters`,
    /// `layer_types`) for `c`, which `ModelConfig(huggingFace:)` reads back to the same
    /// configuration. Families whose Hugging Face layout differs from what Lorikeet merges
    /// (Phi-3's fused projections) are refused, naming `path`.
    public static func huggingFaceConfig(_ c: ModelConfig, path: String) throws(ExportError) -> [String: Any] {
        let architectures: [ModelConfig.Family: (type: String, architecture: String)] = [
            .llama: ("llama", "LlamaForCausalLM"), .mistral: ("mistral", "MistralForCausalLM"),
            .qwen2: ("qwen2", "Qwen2ForCausalLM"), .qwen3: ("qwen3", "Qwen3ForCausalLM"),
            .gemma: ("gemma", "GemmaForCausalLM"), .gemma2: ("gemma2", "Gemma2ForCausalLM"),
            .gemma3: ("gemma3_text", "Gemma3ForCausalLM"),
        ]
        guard let names = architectures[c.family] else {
            throw .unsupported("\(path): config.json cannot be written for \(c.family.rawValue) yet (supported: \(architectures.keys.map(\.rawValue).sorted().joined(separator: ", "))); merge to --format gguf")
        }
        var json: [String: Any] = [
            "architectures": [names.architecture], "model_type": names.type, "vocab_size": c.vocabSize, "hidden_size": c.hiddenSize,
            "intermediate_size": c.intermediateSize, "num_hidden_layers": c.layerCount, "num_attention_heads": c.headCount,
            "num_key_value_heads": c.kvHeadCount, "head_dim": c.headDim,
            "max_position_embeddings": c.maxPositions, "rms_norm_eps": Double(c.rmsNormEps),
            "tie_word_embeddings": c.tieWordEmbeddings, "attention_dropout": 0.0, "use_cache": true,
        ]
        let activation = c.activation == .silu ? "silu" : "gelu_pytorch_tanh"
        if c.family.isGemma { json["hidden_activation"] = activation } else { json["hidden_act"] = activation }
        if c.partialRotaryFactor != 1 { json["partial_rotary_factor"] = Double(c.partialRotaryFactor) }
        let global = try ropeParameters(c, path: path)
        switch c.family {
        case .llama, .mistral:
            json["attention_bias"] = c.attentionBias
            json["mlp_bias"] = false
            json["rope_parameters"] = global
        case .qwen2, .qwen3:
            if c.family == .qwen3 { json["attention_bias"] = c.attentionBias }
            json["rope_parameters"] = global
            json["use_sliding_window"] = c.windowPattern != .none
            json["sliding_window"] = c.windowPattern == .none ? NSNull() : (c.slidingWindow as Any)
            json["max_window_layers"] = c.layerCount
            json["layer_types"] = Array(repeating: "full_attention", count: c.layerCount)
        case .gemma, .gemma2, .gemma3:
            json["attention_bias"] = c.attentionBias
            json["query_pre_attn_scalar"] = Double(c.queryPreAttentionScalar ?? Float(c.headDim))
            json["final_logit_softcapping"] = c.finalLogitSoftcap.map { Double($0) as Any } ?? NSNull()
            json["attn_logit_softcapping"] = c.attentionSoftcap.map { Double($0) as Any } ?? NSNull()
            if c.family != .gemma {
                json["sliding_window"] = c.slidingWindow ?? c.maxPositions
                json["layer_types"] = (0..<c.layerCount).map { c.window(ofLayer: $0) == nil ? "full_attention" : "sliding_attention" }
            }
            if c.family == .gemma3 {
                guard c.ropeScaling == nil || global["rope_type"] as? String == "linear" else {
                    throw .unsupported("\(path): Gemma 3 with \(String(describing: c.ropeScaling)) RoPE scaling has no config.json spelling; merge to --format gguf")
                }
                json["rope_parameters"] = [
                    "full_attention": global,
                    "sliding_attention": ["rope_type": "default", "rope_theta": Double(c.slidingRopeTheta ?? 10_000)],
                ]
                json["use_bidirectional_attention"] = false
            } else {
                json["rope_parameters"] = global
            }
        case .phi3:
            break  // refused above
        }
        return json
    }

    /// One `rope_parameters` entry (global layers): base and scaling. GGUF keeps Llama 3
    /// scaling as per-pair divisors only; config.json needs the parameters that reproduce them.
    static func ropeParameters(_ c: ModelConfig, path: String) throws(ExportError) -> [String: Any] {
        switch c.ropeScaling {
        case nil:
            return ["rope_type": "default", "rope_theta": Double(c.ropeTheta)]
        case .linear(let factor):
            return ["rope_type": "linear", "factor": Double(factor), "rope_theta": Double(c.ropeTheta)]
        case .llama3, .frequencyFactors:
            guard case .llama3(let factor, let low, let high, let original) = c.llama3ScalingReproducingFrequencyFactors ?? c.ropeScaling else {
                throw .unsupported("\(path): its rope_freqs divisors match no Llama 3 RoPE scaling that config.json can express; merge to --format gguf, or onto the base's Hugging Face folder")
            }
            return ["rope_type": "llama3", "factor": Double(factor), "low_freq_factor": Double(low), "high_freq_factor": Double(high),
                    "original_max_position_embeddings": original, "rope_theta": Double(c.ropeTheta)]
        }
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
