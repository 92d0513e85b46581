/// Failures reading or writing model files. Every case names the file, and the tensor or key
/// where there is one, and says what is wrong in terms a user can act on.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    case io(path: String, reason: String)
    /// The file is not what it claims to be, or is damaged.
    case malformed(path: String, reason: String)
    case missingTensor(path: String, tensor: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Pickled PyTorch files can run code when loaded: refused, with the way out.
    case pickleRefused(path: String)

    public var description: String {
        switch self {
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .malformed(let path, let reason):
            return "\(path): \(reason)"
        case .missingTensor(let path, let tensor):
            return "\(path): no tensor named '\(tensor)'"
        case .unsupportedDType(let path, let tensor, let dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype), which Lorikeet cannot read (supported: F32, F16, BF16)"
        case .pickleRefused(let path):
            return "\(path): pickled PyTorch checkpoints can execute code when loaded, so Lorikeet refuses them; convert to safetensors first (e.g. transformers' save_pretrained(..., safe_serialization=True))"
        }
    }
}
