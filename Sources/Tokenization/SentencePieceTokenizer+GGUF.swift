import Formats

extension SentencePieceTokenizer {
    /// The tokenizer stored in a GGUF file whose `tokenizer.ggml.model` is "llama" (scores rank
    /// merges) or "gemma4" (a merge list ranks them).
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        let m = file.metadata
        let model = m["tokenizer.ggml.model"]?.string
        guard model == "llama" || model == "gemma4" else {
            throw .unsupported("\(file.path): not a SentencePiece (llama, gemma4) tokenizer")
        }
        var merges: [String]?
        if model == "gemma4" {
            guard let values = m["tokenizer.ggml.merges"]?.array else { throw .malformed("\(file.path): tokenizer.ggml.merges is missing") }
            merges = values.compactMap(\.string)
            guard merges?.count == values.count else { throw .malformed("\(file.path): tokenizer.ggml.merges must be an array of strings") }
        }
        let tokens = try file.tokenizerTokens()
        guard let scoreValues = m["tokenizer.ggml.scores"]?.array else { throw .malformed("\(file.path): tokenizer.ggml.scores is missing") }
        let scores = scoreValues.compactMap { $0.double.map(Float.init) }
        guard scores.count == scoreValues.count else { throw .malformed("\(file.path): tokenizer.ggml.scores must be numbers") }
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        // llama.cpp's defaults for this model kind: BOS on, dummy prefix on.
        try self.init(tokens: tokens, scores: scores, tokenTypes: types,
                      bos: file.tokenID("tokenizer.ggml.bos_token_id", count: tokens.count),
                      eos: file.tokenID("tokenizer.ggml.eos_token_id", count: tokens.count),
                      unknown: file.tokenID("tokenizer.ggml.unknown_token_id", count: tokens.count),
                      addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? true,
                      spacePrefix: m["tokenizer.ggml.add_space_prefix"]?.bool ?? true ? .everyStretch : .none, merges: merges, source: file.path)
    }
}
