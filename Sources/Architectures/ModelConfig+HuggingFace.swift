import Formats

extension ModelConfig {
    /// Reads a Hugging Face `config.json` (both the transformers 4 spelling — `rope_theta`,
    /// `rope_scaling` — and the transformers 5 one — `rope_parameters`, `layer_types`).
    public init(huggingFace json: JSONValue, path: String) throws(ModelError) {
        func fail(_ why: String) -> ModelError { .invalidConfig("\(path): \(why)") }
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = json[key]?.int else { throw fail("missing or non-integer '\(key)'") }
            return v
        }
        guard let type = json["model_type"]?.string else { throw fail("missing 'model_type'") }
        if type == "gemma3" || json["vision_config"] != nil {
            throw fail("'\(type)' is a multimodal (image and text) model; Lorikeet trains text decoders only (Gemma 3 text models say gemma3_text)")
        }
        guard let family = Self.huggingFaceFamilies[type] else {
            throw .unsupportedArchitecture(type, supported: Self.huggingFaceFamilies.keys.sorted())
        }
        let heads = try int("num_attention_heads")
        let hidden = try int("hidden_size")
        var rope = json["rope_parameters"] ?? json["rope_scaling"]
        // transformers 5 keys Gemma 3's RoPE by layer kind; 4 has rope_local_base_freq.
        let slidingRope = rope?["sliding_attention"]
        if let global = rope?["full_attention"] { rope = global }
        let theta = rope?["rope_theta"]?.double ?? json["rope_theta"]?.double ?? 10_000
        let isGemma = family.isGemma
        self.init(family: family, vocabSize: try int("vocab_size"), hiddenSize: hidden,
                  layerCount: try int("num_hidden_layers"), headCount: heads,
                  kvHeadCount: json["num_key_value_heads"]?.int ?? heads,
                  headDim: json["head_dim"]?.int ?? hidden / max(heads, 1),
                  intermediateSize: try int("intermediate_size"),
                  rmsNormEps: Float(json["rms_norm_eps"]?.double ?? 1e-6), ropeTheta: Float(theta),
                  maxPositions: json["max_position_embeddings"]?.int ?? 2048,
                  tieWordEmbeddings: json["tie_word_embeddings"]?.bool ?? isGemma)

        switch rope?["rope_type"]?.string ?? rope?["type"]?.string ?? "default" {
        case "default": ropeScaling = nil
        case "linear":
            guard let factor = rope?["factor"]?.double, factor > 0 else { throw fail("linear RoPE scaling without a positive 'factor'") }
            ropeScaling = .linear(factor: Float(factor))
        case "llama3":
            guard let factor = rope?["factor"]?.double, let low = rope?["low_freq_factor"]?.double,
                  let high = rope?["high_freq_factor"]?.double, let original = rope?["original_max_position_embeddings"]?.int,
                  factor > 0, high > low, original > 0 else {
                throw fail("llama3 RoPE scaling needs factor, low_freq_factor < high_freq_factor, original_max_position_embeddings")
            }
            ropeScaling = .llama3(factor: Float(factor), lowFrequencyFactor: Float(low), highFrequencyFactor: Float(high), originalContext: original)
        case let other:
            throw fail("RoPE scaling type '\(other)' is not supported (supported: default, linear, llama3)")
        }
        partialRotaryFactor = Float(rope?["partial_rotary_factor"]?.double ?? json["partial_rotary_factor"]?.double ?? 1)

        let activationName = json["hidden_activation"]?.string ?? json["hidden_act"]?.string ?? (isGemma ? "gelu_pytorch_tanh" : "silu")
        switch activationName {
        case "silu", "swish": activation = .silu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": activation = .geluTanh
        case "gelu" where isGemma: activation = .geluTanh  // Gemma checkpoints say "gelu" but were trained with the tanh form
        default: throw fail("activation '\(activationName)' is not supported (supported: silu, gelu_pytorch_tanh)")
        }

        switch family {
        case .llama, .mistral: attentionBias = json["attention_bias"]?.bool ?? false
        case .qwen2: attentionBias = true
        case .qwen3: attentionBias = json["attention_bias"]?.bool ?? false; qkNorm = true
        case .gemma, .gemma2, .gemma3:
            normWeightOffset = 1
            scaleEmbeddings = true
            attentionBias = json["attention_bias"]?.bool ?? false
        case .phi3: fusedQKV = true; fusedGateUp = true
        }
        if family == .gemma2 || family == .gemma3 {
            sandwichNorms = true
            attentionSoftcap = json["attn_logit_softcapping"]?.double.map(Float.init)
            finalLogitSoftcap = json["final_logit_softcapping"]?.double.map(Float.init)
            queryPreAttentionScalar = json["query_pre_attn_scalar"]?.double.map(Float.init)
        }
        if family == .gemma3 {
            qkNorm = true
            if let kind = slidingRope?["rope_type"]?.string, kind != "default" {
                throw fail("RoPE type '\(kind)' on sliding layers is not supported (Gemma 3 uses default)")
            }
            slidingRopeTheta = Float(slidingRope?["rope_theta"]?.double ?? json["rope_local_base_freq"]?.double ?? 10_000)
        }

        // Sliding windows: layer_types when present, else the family's rule.
        slidingWindow = json["sliding_window"]?.int
        if let kinds = json["layer_types"]?.array {
            windowPattern = .layers(kinds.map { $0.string == "sliding_attention" })
        } else if slidingWindow != nil {
            switch family {
            case .gemma2: windowPattern = .evenLayers
            case .gemma3:  // transformers 4.5x: in every `sliding_window_pattern` layers, the last is global
                let period = json["sliding_window_pattern"]?.int ?? 6
                windowPattern = .layers((0..<layerCount).map { ($0 + 1) % max(period, 1) != 0 })
            case .qwen2, .qwen3: windowPattern = json["use_sliding_window"]?.bool == true ? .all : .none
            default: windowPattern = .all
            }
        }
        if windowPattern != .none && slidingWindow == nil { windowPattern = .none }
        try validate()
    }
}

extension ModelConfig {
    /// `model_type` values of config.json and the family each one configures.
    public static let huggingFaceFamilies: [String: Family] = {
        var table = Dictionary(uniqueKeysWithValues: Family.allCases.map { ($0.rawValue, $0) })
        table["gemma3"] = nil           // the multimodal wrapper (Gemma3ForConditionalGeneration)
        table["gemma3_text"] = .gemma3  // Gemma3ForCausalLM
        return table
    }()
}
