import Foundation

/// A value inside the template interpreter (Jinja's Python-like data model, reduced to what
/// chat templates use).
public indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// Keys keep their insertion order (tojson and `items()` depend on it).
    case object([String], [String: JinjaValue])
    /// A `namespace(...)`: the one mutable object templates have (shared by reference).
    case namespace(JinjaNamespace)

    public static func dictionary(_ pairs: [(String, JinjaValue)]) -> JinjaValue {
        var keys: [String] = [], values: [String: JinjaValue] = [:]
        for (k, v) in pairs { if values[k] == nil { keys.append(k) }; values[k] = v }
        return .object(keys, values)
    }

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let k, _): return !k.isEmpty
        case .namespace: return true
        }
    }

    /// `str(value)` as Jinja prints it.
    var text: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s): return s
        case .array(let a): return "[" + a.map(\.repr).joined(separator: ", ") + "]"
        case .object(let keys, let values): return "{" + keys.map { "'\($0)': \(values[$0]?.repr ?? "")" }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        }
    }

    /// Python's repr (strings quoted), used inside printed containers.
    var repr: String {
        if case .string(let s) = self { return "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        return text
    }

    /// JSON as Python's json.dumps(ensure_ascii=False) writes it (transformers' tojson).
    public func json(indent: Int? = nil, level: Int = 0) -> String {
        switch self {
        case .undefined, .none: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e16 ? String(format: "%.1f", d) : String(d)
        case .string(let s): return Self.jsonString(s)
        case .namespace: return "{}"
        case .array(let a):
            if a.isEmpty { return "[]" }
            guard let indent else { return "[" + a.map { $0.json(indent: nil) }.joined(separator: ", ") + "]" }
            let pad = String(repeating: " ", count: indent * (level + 1)), close = String(repeating: " ", count: indent * level)
            return "[\n" + a.map { pad + $0.json(indent: indent, level: level + 1) }.joined(separator: ",\n") + "\n" + close + "]"
        case .object(let keys, let values):
            if keys.isEmpty { return "{}" }
            guard let indent else {
                return "{" + keys.map { Self.jsonString($0) + ": " + (values[$0] ?? .none).json(indent: nil) }.joined(separator: ", ") + "}"
            }
            let pad = String(repeating: " ", count: indent * (level + 1)), close = String(repeating: " ", count: indent * level)
            return "{\n" + keys.map { pad + Self.jsonString($0) + ": " + (values[$0] ?? .none).json(indent: indent, level: level + 1) }
                .joined(separator: ",\n") + "\n" + close + "}"
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// A value from parsed JSON (conversations, tool definitions).
    public init(json: Any?) {
        switch json {
        case nil, is NSNull: self = .none
        case let n as NSNumber where String(cString: n.objCType) == "c": self = .bool(n.boolValue)
        case let n as NSNumber:
            if let i = Int(exactly: n.doubleValue), !String(cString: n.objCType).contains("d") && !String(cString: n.objCType).contains("f") { self = .int(i) } else { self = .double(n.doubleValue) }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map { JinjaValue(json: $0) })
        case let o as [String: Any]: self = .dictionary(o.keys.sorted().map { ($0, JinjaValue(json: o[$0])) })
        default: self = .none
        }
    }
}

/// Mutable attribute storage behind `namespace(...)`.
public final class JinjaNamespace: @unchecked Sendable, Equatable {
    var values: [String: JinjaValue]
    init(_ values: [String: JinjaValue]) { self.values = values }
    public static func == (a: JinjaNamespace, b: JinjaNamespace) -> Bool { a === b }
}
