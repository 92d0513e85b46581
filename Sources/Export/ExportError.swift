import Architectures
import Formats
import Tokenization
import Training

/// Why an adapter could not be read for export, or a merge or export could not be written;
/// each case names the file or tensor at fault.
public enum ExportError: Error, CustomStringConvertible {
    case format(FormatError)
    case model(ModelError)
    case tokenizer(TokenizerError)
    case checkpoint(CheckpointError)
    /// An adapter that cannot be used as asked (a PEFT feature we do not apply, a tensor for
    /// another base, a PiSSA/LoftQ checkpoint without its original base).
    case invalidAdapter(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .format(let e): return e.description
        case .model(let e): return e.description
        case .tokenizer(let e): return e.description
        case .checkpoint(let e): return e.description
        case .invalidAdapter(let why), .unsupported(let why): return why
        }
    }
}
