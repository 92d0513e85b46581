import Formats

/// The tokenizer a GGUF file describes, of whichever kind its `tokenizer.ggml.model` names.
public func makeTokenizer(gguf file: GGUFFile) throws(TokenizerError) -> any Tokenizer {
    guard let model = file.metadata["tokenizer.ggml.model"]?.string else {
        throw .malformed("\(file.path): no tokenizer (tokenizer.ggml.model is missing)")
    }
    switch model {
    case "gpt2": return try BPETokenizer(gguf: file)
    case "llama", "gemma4": return try SentencePieceTokenizer(gguf: file)
    default:
        throw .unsupported("\(file.path): tokenizer model '\(model)' is not supported yet (supported: gpt2 byte-level BPE, llama and gemma4 SentencePiece-style BPE)")
    }
}

/// Metadata readers both tokenizer kinds share.
extension GGUFFile {
    /// `tokenizer.ggml.tokens`, checked to be strings.
    func tokenizerTokens() throws(TokenizerError) -> [String] {
        guard let values = metadata["tokenizer.ggml.tokens"]?.array else { throw .malformed("\(path): tokenizer.ggml.tokens is missing") }
        let tokens = values.compactMap(\.string)
        guard tokens.count == values.count else { throw .malformed("\(path): tokenizer.ggml.tokens must be an array of strings") }
        return tokens
    }

    /// A token id stored under `key`, if present and inside a vocabulary of `count` tokens.
    func tokenID(_ key: String, count: Int) -> Int32? {
        metadata[key]?.int.flatMap { $0 >= 0 && $0 < count ? Int32($0) : nil }
    }
}
