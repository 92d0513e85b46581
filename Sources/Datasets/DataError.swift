/// Failures reading or preparing training data. Every case names the file, and the line
/// where there is one, so a user can open the record and fix it.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case io(path: String, reason: String)
    /// One JSONL record is unusable (1-based line, and 1-based column where the JSON parser
    /// knows it).
    case record(path: String, line: Int, column: Int? = nil, reason: String)
    /// The data settings themselves are inconsistent.
    case settings(String)

    public var description: String {
        switch self {
        case .io(let path, let reason): return "\(path): \(reason)"
        case .record(let path, let line, let column?, let reason): return "\(path):\(line):\(column): \(reason)"
        case .record(let path, let line, nil, let reason): return "\(path):\(line): \(reason)"
        case .settings(let why): return why
        }
    }
}
