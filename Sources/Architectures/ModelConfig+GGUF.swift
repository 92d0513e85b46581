import Formats

extension ModelConfig {
    /// Families whose GGUF layout Lorikeet has verified against files written by llama.cpp's
    /// converter (Tests/ArchitecturesTests/Fixtures/*/model.gguf). Mistral is not listed: the converter
    /// writes it as `llama`.
    public static let ggufFamilies: [Family] = [.llama, .qwen2, .qwen3, .gemma, .gemma2, .gemma3, .phi3]

    /// Reads the `{arch}.*` hyperparameters of a GGUF file, with the defaults llama.cpp assumes
    /// for keys its converter leaves out (Gemma writes no RoPE base, Gemma 2 no attention scale).
    public init(gguf file: GGUFFile) throws(ModelError) {
        let path = file.path
        func fail(_ why: String) -> ModelError { .invalidConfig("\(path): \(why)") }
        guard let arch = file.metadata["general.architecture"]?.string else { throw fail("missing general.architecture") }
        try Self.refuseMultimodal(file, arch: arch)
        guard let family = Family(rawValue: arch), Self.ggufFamilies.contains(family) else {
            throw .unsupportedArchitecture(arch, supported: Self.ggufFamilies.map(\.rawValue) + ["(as GGUF; others load from Hugging Face folders)"])
        }
        func value(_ key: String) -> GGUFValue? { file.metadata["\(arch).\(key)"] }
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = value(key)?.int else { throw fail("missing or non-integer '\(arch).\(key)'") }
            return v
        }
        func float(_ key: String) -> Float? { value(key)?.double.map(Float.init) }
        let heads = try int("attention.head_count"), hidden = try int("embedding_length")
        let vocab = value("vocab_size")?.int ?? file.metadata["tokenizer.ggml.tokens"]?.array?.count
        guard let vocab else { throw fail("no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)") }
        self.init(family: family, vocabSize: vocab, hiddenSize: hidden, layerCount: try int("block_count"), headCount: heads,
                  kvHeadCount: value("attention.head_count_kv")?.int ?? heads,
                  headDim: value("attention.key_length")?.int ?? hidden / max(heads, 1),
                  intermediateSize: try int("feed_forward_length"),
                  rmsNormEps: float("attention.layer_norm_rms_epsilon") ?? 1e-5,
                  ropeTheta: float("rope.freq_base") ?? 10_000,
                  maxPositions: value("context_length")?.int ?? 2048,
                  tieWordEmbeddings: file.tensor("output.weight") == nil)
        if let rotary = value("rope.dimension_count")?.int, rotary != headDim {
            partialRotaryFactor = Float(rotary) / Float(headDim)
        }
        if let scaling = value("rope.scaling.type")?.string, scaling != "none" {
            guard scaling == "linear", let factor = float("rope.scaling.factor"), factor > 0 else {
                throw fail("RoPE scaling '\(scaling)' is not supported from GGUF yet")
            }
            ropeScaling = .linear(factor: factor)
        }
        if file.tensor("rope_factors_long.weight") != nil {
            throw fail("long-context RoPE factors (rope_factors_long/short, Phi-3 128k) are not supported yet")
        }
        if let factors = try Self.ropeFrequencyFactors(file) { ropeScaling = .frequencyFactors(factors) }
        try applyFamilyVariations(file, arch: arch)
        try validate()
    }

    /// Vision projectors (llama.cpp's `mmproj` files, architecture `clip`) and GGUFs that carry a
    /// vision tower next to the decoder are named as such: Lorikeet fine-tunes text decoders.
    static func refuseMultimodal(_ file: GGUFFile, arch: String) throws(ModelError) {
        if arch == "clip" || file.metadata["clip.has_vision_encoder"] != nil || file.metadata["clip.projector_type"] != nil {
            let projector = file.metadata["clip.projector_type"]?.string.map { " (\($0))" } ?? ""
            throw .unreadable("\(file.path): a vision projector (mmproj)\(projector) of a multimodal model, not a language model; Lorikeet fine-tunes text decoders — give it the text model's GGUF")
        }
        if let vision = file.tensors.first(where: { $0.name.hasPrefix("v.") || $0.name.hasPrefix("mm.") }) {
            throw .unreadable("\(file.path): a multimodal \(arch) GGUF (vision tensor '\(vision.name)'); Lorikeet fine-tunes text decoders only — use a text-only GGUF of the model")
        }
    }

    /// The named variations GGUF metadata carries for each family, or that llama.cpp derives
    /// from the architecture name (mirroring `init(huggingFace:)`'s choices).
    mutating func applyFamilyVariations(_ file: GGUFFile, arch: String) throws(ModelError) {
        func value(_ key: String) -> GGUFValue? { file.metadata["\(arch).\(key)"] }
        attentionBias = file.tensor("blk.0.attn_q.bias") != nil || file.tensor("blk.0.attn_qkv.bias") != nil
        switch family {
        case .llama, .mistral, .qwen2:
            break  // the converter stores no sliding window for these
        case .qwen3:
            qkNorm = true
        case .gemma, .gemma2, .gemma3:
            normWeightOffset = 1
            scaleEmbeddings = true
            activation = .geluTanh
        case .phi3:
            fusedQKV = true
            fusedGateUp = true
            // 0 means none. transformers applies a positive window to every layer, as the Hugging
            // Face path does; llama.cpp currently ignores it for Phi-3.
            if let window = value("attention.sliding_window")?.int, window > 0 {
                slidingWindow = window
                windowPattern = .all
            }
        }
        switch family {
        case .gemma2: applyGemma2(file, arch: arch)
        case .gemma3: applyGemma3(file, arch: arch)
        default: break
        }
    }

    /// Gemma 2: sandwich norms, soft-capping, a window on every other layer.
    private mutating func applyGemma2(_ file: GGUFFile, arch: String) {
        func value(_ key: String) -> GGUFValue? { file.metadata["\(arch).\(key)"] }
        sandwichNorms = true
        attentionSoftcap = value("attn_logit_softcapping")?.double.map(Float.init)
        finalLogitSoftcap = value("final_logit_softcapping")?.double.map(Float.init)
        slidingWindow = value("attention.sliding_window")?.int ?? 4096  // llama.cpp's default for Gemma 2
        windowPattern = Self.ggufWindowPattern(value("attention.sliding_window_pattern"), layers: layerCount) ?? .evenLayers
        // GGUF has no query_pre_attn_scalar; llama.cpp scales by key_length^-½ except for Gemma 2
        // 27B (46 layers), whose scalar is hidden / heads.
        if layerCount == 46 { queryPreAttentionScalar = Float(hiddenSize / headCount) }
    }

    /// Gemma 3 as llama.cpp runs it: sandwich norms and QK-norm (all stored as 1 + w), a
    /// window on five of every six layers, whose RoPE base is 10 000 and unscaled, while global
    /// layers use the file's base and scaling. No attention soft-capping.
    private mutating func applyGemma3(_ file: GGUFFile, arch: String) {
        func value(_ key: String) -> GGUFValue? { file.metadata["\(arch).\(key)"] }
        sandwichNorms = true
        qkNorm = true
        finalLogitSoftcap = value("final_logit_softcapping")?.double.map(Float.init)
        // llama.cpp: no window (or 0) means every layer is global.
        if let window = value("attention.sliding_window")?.int, window > 0 {
            slidingWindow = window
            // Period 6 (layers 5, 11, … global) unless the file lists each layer's kind.
            windowPattern = Self.ggufWindowPattern(value("attention.sliding_window_pattern"), layers: layerCount)
                ?? .layers((0..<layerCount).map { $0 % 6 < 5 })
            // llama.cpp's rope_freq_base_train_swa (default 10 000), transformers' rope_local_base_freq.
            slidingRopeTheta = value("rope.freq_base_swa")?.double.map(Float.init) ?? 10_000
        }
        // As for Gemma 2: no key; llama.cpp uses key_length except for the 27B (62 layers).
        if layerCount == 62 { queryPreAttentionScalar = Float(hiddenSize / headCount) }
    }

    /// `attention.sliding_window_pattern` as llama.cpp writes it: a bool per layer, or a period
    /// in which all but the last layer slide (0: all of them).
    static func ggufWindowPattern(_ stored: GGUFValue?, layers: Int) -> WindowPattern? {
        if let kinds = stored?.array { return .layers(kinds.map { $0.bool == true }) }
        if let period = stored?.int, period >= 0 { return .layers((0..<layers).map { period == 0 || $0 % period < period - 1 }) }
        return nil
    }

    /// llama.cpp's `rope_freqs` tensor (Llama 3.x scaling as one divisor per rotary pair), if present.
    static func ropeFrequencyFactors(_ file: GGUFFile) throws(ModelError) -> [Float]? {
        guard let info = file.tensor("rope_freqs.weight") else { return nil }
        guard info.dimensions.count == 1, info.type.isDecodable else {
            throw .invalidConfig("\(file.path): rope_freqs.weight must be a vector of a decodable type, got \(info.type.name) \(info.shape)")
        }
        let bytes = file.bytes(of: info)
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, count in
            if let base = buffer.baseAddress {
                GGUFDequantizer.decode(info.type, bytes: bytes, first: 0, count: info.elementCount, into: base)
            }
            count = info.elementCount
        }
    }
}

extension DecoderModel {
    /// Loads a GGUF model file; weights stay in their ggml blocks, memory-mapped.
    public convenience init(ggufPath path: String) throws(ModelError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .unreadable(error.description) }
        let config = try ModelConfig(gguf: file)
        try self.init(config: config, weights: GGUFWeightSource(file: file, config: config))
    }
}

extension ModelConfig {
    /// Llama 3 RoPE parameters that reproduce this configuration's `rope_freqs` divisors, for a
    /// config.json (transformers has no per-pair divisors). llama.cpp's converter derives the
    /// divisors from factor, low/high frequency factors and the original context and stores
    /// only the result, so the published Llama 3.x choice (low 1, high 4) is tried with the
    /// largest divisor as the factor and every power-of-two original context; a candidate is
    /// accepted only if it gives the same rotary frequencies (relative 1e-5), which is all the
    /// model computes with them. Nil when there are no divisors or none reproduces them.
    public var llama3ScalingReproducingFrequencyFactors: RopeScaling? {
        guard case .frequencyFactors(let factors) = ropeScaling, let factor = factors.max(), factor > 1 else { return nil }
        let target = rotaryEmbedding.inverseFrequencies
        for exponent in 4...20 {
            var candidate = self
            candidate.ropeScaling = .llama3(factor: factor, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 1 << exponent)
            let frequencies = candidate.rotaryEmbedding.inverseFrequencies
            if frequencies.count == target.count, zip(frequencies, target).allSatisfy({ abs($0 - $1) <= 1e-5 * abs($1) }) {
                return candidate.ropeScaling
            }
        }
        return nil
    }
}
