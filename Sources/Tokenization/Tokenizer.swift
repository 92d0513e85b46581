/// What callers (data preparation, the CLI, generation) need from a tokenizer, whatever its
/// kind: byte-level BPE (`BPETokenizer`) or SentencePiece-style BPE (`SentencePieceTokenizer`).
public protocol Tokenizer: Sendable {
    /// Vocabulary strings in the model's own spelling (byte-level characters or ▁ pieces).
    var tokens: [String] { get }
    var bos: Int32? { get }
    var eos: Int32? { get }
    /// Whether the model wants BOS before a text when the caller does not say.
    var addBOS: Bool { get }
    /// Control and user-defined tokens, matched verbatim in text when `parseSpecial` is on.
    var specialTokens: [String: Int32] { get }

    /// Token ids of `text`. `parseSpecial`: special-token text becomes its token (chat
    /// templates); otherwise it is tokenized as plain text (user data). `addBOS` nil: the
    /// model's own rule.
    func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) throws(TokenizerError) -> [Int32]
    /// The bytes a whole sequence stands for: the exact inverse of `encode` (it may end inside a
    /// UTF-8 character).
    func decodeBytes(_ ids: [Int32]) -> [UInt8]
    /// The bytes one token adds when streamed after others (no start-of-text rule applied).
    func tokenBytes(_ id: Int32) -> [UInt8]
    /// Each token's share of `decodeBytes(ids)`, in order; the counts add up to its length.
    func decodedLengths(_ ids: [Int32]) -> [Int]
    /// SHA-256 of everything that decides how text becomes ids, so caches of token ids key on
    /// the tokenizer rather than on the model file.
    var fingerprint: [UInt8] { get }
}

extension Tokenizer {
    public var vocabularySize: Int { tokens.count }

    public func encode(_ text: String) throws(TokenizerError) -> [Int32] { try encode(text, addBOS: nil, parseSpecial: true) }
    public func encode(_ text: String, addBOS: Bool?) throws(TokenizerError) -> [Int32] { try encode(text, addBOS: addBOS, parseSpecial: true) }
    public func encode(_ text: String, parseSpecial: Bool) throws(TokenizerError) -> [Int32] { try encode(text, addBOS: nil, parseSpecial: parseSpecial) }

    /// Token ids of raw bytes that should be UTF-8 text (a file, a socket); invalid UTF-8 is an
    /// error naming the first bad byte's offset, never a silent replacement character.
    public func encode(utf8 bytes: [UInt8], addBOS: Bool? = nil, parseSpecial: Bool = true) throws(TokenizerError) -> [Int32] {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            var offset = 0
            var decoder = UTF8()
            var iterator = bytes.makeIterator()
            loop: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s): offset += UTF8.width(s)
                case .emptyInput: break loop
                case .error: break loop
                }
            }
            throw .invalidText("the text is not valid UTF-8 (first bad byte at offset \(offset): 0x\(String(bytes[min(offset, bytes.count - 1)], radix: 16, uppercase: true))); convert it to UTF-8 first")
        }
        return try encode(text, addBOS: addBOS, parseSpecial: parseSpecial)
    }

    /// Decoded text (invalid UTF-8 sequences repaired with U+FFFD).
    public func decode(_ ids: [Int32]) -> String { String(decoding: decodeBytes(ids), as: UTF8.self) }

    /// The vocabulary strings of `ids` (as `--pieces` shows them).
    public func pieces(_ ids: [Int32]) -> [String] { ids.map { $0 >= 0 && Int($0) < tokens.count ? tokens[Int($0)] : "<\($0)?>" } }

    /// `bos_token` and `eos_token` as chat templates expect them.
    public var templateVariables: [String: JinjaValue] {
        var variables: [String: JinjaValue] = [:]
        if let bos { variables["bos_token"] = .string(tokens[Int(bos)]) }
        if let eos { variables["eos_token"] = .string(tokens[Int(eos)]) }
        return variables
    }
}
