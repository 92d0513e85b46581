import Formats

extension BPETokenizer {
    /// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata.
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        let m = file.metadata
        guard let model = m["tokenizer.ggml.model"]?.string else {
            throw .malformed("\(file.path): no tokenizer (tokenizer.ggml.model is missing)")
        }
        guard model == "gpt2" else {
            throw .unsupported("\(file.path): tokenizer model '\(model)' is not supported yet (supported: gpt2 byte-level BPE)")
        }
        let preName = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = PreTokenizer(ggufName: preName) else {
            throw .unsupported("\(file.path): pre-tokenizer '\(preName)' is not supported yet (supported: \(PreTokenizer.supportedGGUFNames))")
        }
        guard let tokenValues = m["tokenizer.ggml.tokens"]?.array, let mergeValues = m["tokenizer.ggml.merges"]?.array else {
            throw .malformed("\(file.path): tokenizer.ggml.tokens or tokenizer.ggml.merges is missing")
        }
        let tokens = tokenValues.compactMap(\.string), merges = mergeValues.compactMap(\.string)
        guard tokens.count == tokenValues.count, merges.count == mergeValues.count else {
            throw .malformed("\(file.path): tokenizer.ggml.tokens and merges must be arrays of strings")
        }
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        func id(_ key: String) -> Int32? { m[key]?.int.flatMap { $0 >= 0 && $0 < tokens.count ? Int32($0) : nil } }
        try self.init(tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre,
                      bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
                      unknown: id("tokenizer.ggml.unknown_token_id"),
                      addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false,
                      ignoreMerges: pre == .llama3, normalizer: pre == .qwen2 ? .nfc : .none, source: file.path)
    }
}
