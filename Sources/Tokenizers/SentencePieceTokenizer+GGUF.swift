import Formats

extension SentencePieceTokenizer {
    /// The tokenizer stored in a GGUF file whose `tokenizer.ggml.model` is "llama".
    public convenience init(gguf file: GGUFFile) throws(TokenizerError) {
        let m = file.metadata
        guard m["tokenizer.ggml.model"]?.string == "llama" else {
            throw .unsupported("\(file.path): not a SentencePiece (llama) tokenizer")
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
                      addSpacePrefix: m["tokenizer.ggml.add_space_prefix"]?.bool ?? true, source: file.path)
    }
}
