import Formats

extension ModelConfig {
    /// Families whose GGUF layout Lorikeet has verified against llama.cpp's converter.
    public static let ggufFamilies: [Family] = [.llama]

    /// Reads the `{arch}.*` hyperparameters of a GGUF file.
    public init(gguf file: GGUFFile) throws(ModelError) {
        let path = file.path
        func fail(_ why: String) -> ModelError { .invalidConfig("\(path): \(why)") }
        guard let arch = file.metadata["general.architecture"]?.string else { throw fail("missing general.architecture") }
        guard let family = Family(rawValue: arch), Self.ggufFamilies.contains(family) else {
            throw .unsupportedArchitecture(arch, supported: Self.ggufFamilies.map(\.rawValue) + ["(as GGUF; others load from Hugging Face folders)"])
        }
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = file.metadata["\(arch).\(key)"]?.int else { throw fail("missing or non-integer '\(arch).\(key)'") }
            return v
        }
        let heads = try int("attention.head_count"), hidden = try int("embedding_length")
        let vocab = file.metadata["\(arch).vocab_size"]?.int ?? file.metadata["tokenizer.ggml.tokens"]?.array?.count
        guard let vocab else { throw fail("no vocabulary size (\(arch).vocab_size or tokenizer.ggml.tokens)") }
        self.init(family: family, vocabSize: vocab, hiddenSize: hidden, layerCount: try int("block_count"), headCount: heads,
                  kvHeadCount: file.metadata["\(arch).attention.head_count_kv"]?.int ?? heads,
                  headDim: file.metadata["\(arch).attention.key_length"]?.int ?? hidden / max(heads, 1),
                  intermediateSize: try int("feed_forward_length"),
                  rmsNormEps: Float(file.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
                  ropeTheta: Float(file.metadata["\(arch).rope.freq_base"]?.double ?? 10_000),
                  maxPositions: file.metadata["\(arch).context_length"]?.int ?? 2048,
                  tieWordEmbeddings: file.tensor("output.weight") == nil)
        if let rotary = file.metadata["\(arch).rope.dimension_count"]?.int, rotary != headDim {
            partialRotaryFactor = Float(rotary) / Float(headDim)
        }
        if let scaling = file.metadata["\(arch).rope.scaling.type"]?.string, scaling != "none" {
            guard scaling == "linear", let factor = file.metadata["\(arch).rope.scaling.factor"]?.double, factor > 0 else {
                throw fail("RoPE scaling '\(scaling)' is not supported from GGUF yet")
            }
            ropeScaling = .linear(factor: Float(factor))
        }
        if file.tensor("rope_freqs.weight") != nil {
            throw fail("per-frequency RoPE factors (rope_freqs, Llama 3.1+) are not supported from GGUF yet")
        }
        try validate()
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
