import Foundation
import Yams

/// A recipe value: YAML scalars and flat lists are all a recipe needs.
public enum RecipeValue: Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([String])

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s.isEmpty || s.contains(where: { ":#{}[],&*!|>'\"%@`\n".contains($0) }) || Double(s) != nil || ["true", "false", "null", "~"].contains(s.lowercased())
            ? "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\"" : s
        case .list(let items): return "[" + items.map { RecipeValue.string($0).description }.joined(separator: ", ") + "]"
        }
    }
}

/// Failures reading a recipe: the file (and YAML line) or the key at fault, and what is valid.
public enum RecipeError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case unknownKey(String, suggestion: String?, source: String)
    case invalidValue(key: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .unreadable(let why): return why
        case .unknownKey(let key, let suggestion, let source):
            return "\(source): unknown recipe key '\(key)'" + (suggestion.map { ". Did you mean '\($0)'?" } ?? "")
        case .invalidValue(let key, let value, let expected):
            return "recipe key '\(key)': \(value) is not valid; expected \(expected)"
        }
    }
}

/// The flat `section.key → value` view of a recipe: YAML file, defaults and `--set` overrides
/// merged, every key checked against the known ones.
public struct RecipeDocument: Sendable, Equatable {
    public private(set) var values: [String: RecipeValue]

    /// Every key with its default, in the order recipes list them: `Recipe()` flattened.
    static let schema: [(key: String, value: RecipeValue)] = (try? FlatCoding.flatten(Recipe())) ?? []
    static let defaults: [String: RecipeValue] = Dictionary(schema.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    static let order: [String: Int] = Dictionary(schema.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { a, _ in a })
    static func keyOrder(_ a: String, _ b: String) -> Bool { (order[a] ?? .max, a) < (order[b] ?? .max, b) }

    /// Every recipe key, in the order recipes list them.
    public static var keys: [String] { schema.map(\.key) }

    /// The defaults alone.
    public init() { values = Self.defaults }

    /// A typed recipe's every key.
    public init(_ recipe: Recipe) throws(RecipeError) {
        values = Dictionary(try FlatCoding.flatten(recipe).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Defaults, then the YAML text's keys. Custom tags are refused (YAML from strangers must
    /// not construct anything but plain values).
    public init(yaml text: String, source: String) throws(RecipeError) {
        self.init()
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw .unreadable("\(source): \(error)") }
        guard let node else { return }
        guard case .mapping(let top) = node else { throw .unreadable("\(source): a recipe is a mapping of sections (model, data, lora, quantization, training, output)") }
        try flatten(top, prefix: "", source: source)
    }

    mutating func flatten(_ mapping: Node.Mapping, prefix: String, source: String) throws(RecipeError) {
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else { throw .unreadable("\(source): a key that is not a string") }
            let path = prefix.isEmpty ? key : prefix + "." + key
            if case .mapping(let inner) = valueNode {
                guard Self.defaults.keys.contains(where: { $0.hasPrefix(path + ".") }) else {
                    throw .unknownKey(path, suggestion: Self.closest(to: path), source: source)
                }
                try flatten(inner, prefix: path, source: source)
            } else {
                try set(path, Self.value(of: valueNode, key: path, source: source), source: source)
            }
        }
    }

    /// A plain scalar read as a YAML 1.1 integer (decimal, `0x` hex, `0o` or leading-0 octal,
    /// `0b` binary, `_` separators), or nil (also when it does not fit an Int). Yams's own reader
    /// traps on a base-60 integer that overflows ("99999999999:…", found by fuzzing), so base 60
    /// is left to the float reader, which cannot trap.
    static func integer(_ text: String) -> Int? {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        for (prefix, base) in [("0x", 16), ("0o", 8), ("0b", 2)] where digits.hasPrefix(prefix) {
            digits = digits.dropFirst(2)
            radix = base
        }
        if radix == 10, digits.count > 1, digits.hasPrefix("0") { radix = 8 }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }),
              let magnitude = UInt(digits, radix: radix) else { return nil }
        if negative { return magnitude <= UInt(Int.max) + 1 ? Int(truncatingIfNeeded: 0 &- magnitude) : nil }
        return Int(exactly: magnitude)
    }

    static func value(of node: Node, key: String, source: String) throws(RecipeError) -> RecipeValue {
        switch node {
        case .scalar(let scalar):
            let standard: Set<String> = [Tag.Name.implicit, .nonSpecific, .str, .int, .float, .bool, .null].map(\.rawValue).reduce(into: []) { $0.insert($1) }
            guard standard.contains(scalar.tag.description) else { throw .unreadable("\(source): key '\(key)': tag \(scalar.tag) is not allowed in recipes") }
            if scalar.style != .plain { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let b = node.bool { return .bool(b) }
            if let i = Self.integer(scalar.string) { return .int(i) }
            if let d = node.float { return .double(d) }
            return .string(scalar.string)
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let s) = item else { throw .invalidValue(key: key, value: "a nested list", expected: "a list of plain values") }
                items.append(s.string)
            }
            return .list(items)
        case .mapping, .alias:
            throw .invalidValue(key: key, value: "a mapping", expected: "a value")
        }
    }

    /// Sets one key; unknown keys are refused with the closest known one.
    public mutating func set(_ key: String, _ value: RecipeValue, source: String) throws(RecipeError) {
        guard Self.defaults[key] != nil else { throw .unknownKey(key, suggestion: Self.closest(to: key), source: source) }
        values[key] = value
    }

    /// Applies `--set section.key=value` (the value read as YAML: `[q_proj, v_proj]`, `2e-4`).
    public mutating func override(_ assignment: String) throws(RecipeError) {
        guard let equals = assignment.firstIndex(of: "=") else {
            throw .unreadable("--set \(assignment): expected section.key=value")
        }
        let key = String(assignment[..<equals]), text = String(assignment[assignment.index(after: equals)...])
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw .unreadable("--set \(assignment): \(error)") }
        try set(key, try node.map { n throws(RecipeError) in try Self.value(of: n, key: key, source: "--set") } ?? .null, source: "--set")
    }

    /// The whole effective recipe as YAML (saved in checkpoints; loads back to the same values).
    public var yaml: String {
        var out = "", section = "", group = ""
        for key in values.keys.sorted(by: Self.keyOrder) {
            guard let value = values[key] else { continue }
            let parts = key.split(separator: ".").map(String.init)
            if parts[0] != section { section = parts[0]; group = ""; out += "\(section):\n" }
            if parts.count == 3 {
                if parts[1] != group { group = parts[1]; out += "  \(group):\n" }
                out += "    \(parts[2]): \(value)\n"
            } else {
                group = ""
                out += "  \(parts[1]): \(value)\n"
            }
        }
        return out
    }

    static func closest(to key: String) -> String? {
        let ranked = Self.defaults.keys.map { ($0, editDistance($0, key)) }.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        guard let best = ranked.first, best.1 <= max(3, key.count / 3) else { return nil }
        return best.0
    }

    /// Levenshtein distance, for "did you mean".
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}
