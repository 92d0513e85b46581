/// Failures building or using a tokenizer; each names the file or the token.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unsupported(String)
    case malformed(String)
    /// Text given to encode that is not text (invalid UTF-8).
    case invalidText(String)

    public var description: String {
        switch self {
        case .unsupported(let why), .malformed(let why), .invalidText(let why): return why
        }
    }
}
