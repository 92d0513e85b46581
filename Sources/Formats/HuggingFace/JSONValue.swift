import Foundation

/// A parsed JSON document (`config.json`, `generation_config.json`, tokenizer files) with
/// typed, lenient accessors: integers stored as 2.0, missing keys and nulls read as nil.
public enum JSONValue: Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(data: Data, path: String) throws(FormatError) {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw .malformed(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        self = JSONValue(any)
    }

    public init(contentsOf path: String) throws(FormatError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path: path, reason: "cannot read the file") }
        try self.init(data: data, path: path)
    }

    init(_ any: Any) {
        switch any {
        // JSON booleans arrive as NSNumber with objCType "c" (a plain `is Bool` also matches 0 and 1).
        case let n as NSNumber where String(cString: n.objCType) == "c": self = .bool(n.boolValue)
        case let n as NSNumber: self = .number(n.doubleValue)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSONValue.init))
        case let o as [String: Any]: self = .object(o.mapValues(JSONValue.init))
        default: self = .null
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self, let v = o[key], v != .null { return v }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var double: Double? { if case .number(let n) = self { return n }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var int: Int? {
        guard let d = double, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }
}
