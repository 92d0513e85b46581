/// A small JSON reader that keeps object keys in document order (tool definitions are printed
/// back with `tojson`, where order shows). Errors give the line and column.
public enum JSONReader {
    public static func parse(_ text: String) throws(TemplateError) -> JinjaValue { try parseTree(text) }

    /// The document as any tree type (tokenizer.json wants objects as raw key/value pairs).
    static func parseTree<Value: JSONTree>(_ text: String) throws(TemplateError) -> Value {
        var p = Cursor<Value>(chars: Array(text.unicodeScalars))
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.chars.count else { throw p.fail("unexpected text after the JSON value") }
        return value
    }

    struct Cursor<Value: JSONTree> {
        let chars: [Unicode.Scalar]
        var i = 0

        func fail(_ message: String) -> TemplateError {
            var line = 1, column = 1
            for c in chars[0..<min(i, chars.count)] { if c == "\n" { line += 1; column = 1 } else { column += 1 } }
            return TemplateError(message: "JSON: \(message)", line: line, column: column)
        }

        mutating func skipSpace() { while i < chars.count, [" ", "\n", "\r", "\t"].contains(chars[i]) { i += 1 } }

        mutating func value(depth: Int) throws(TemplateError) -> Value {
            guard depth < 128 else { throw fail("nested too deeply") }
            guard i < chars.count else { throw fail("unexpected end of input") }
            switch chars[i] {
            case "{":
                i += 1; skipSpace()
                var pairs: [(String, Value)] = []
                if i < chars.count, chars[i] == "}" { i += 1; return .dictionary(pairs) }
                while true {
                    skipSpace()
                    guard i < chars.count, chars[i] == "\"" else { throw fail("expected a string key") }
                    let key = try string()
                    skipSpace()
                    guard i < chars.count, chars[i] == ":" else { throw fail("expected ':'") }
                    i += 1; skipSpace()
                    pairs.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < chars.count else { throw fail("unterminated object") }
                    if chars[i] == "," { i += 1; continue }
                    if chars[i] == "}" { i += 1; return .dictionary(pairs) }
                    throw fail("expected ',' or '}'")
                }
            case "[":
                i += 1; skipSpace()
                var items: [Value] = []
                if i < chars.count, chars[i] == "]" { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < chars.count else { throw fail("unterminated array") }
                    if chars[i] == "," { i += 1; continue }
                    if chars[i] == "]" { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case "\"": return .string(try string())
            case "t": return try literal("true", .bool(true))
            case "f": return try literal("false", .bool(false))
            case "n": return try literal("null", .none)
            default: return try number()
            }
        }

        mutating func literal(_ word: String, _ v: Value) throws(TemplateError) -> Value {
            let w = Array(word.unicodeScalars)
            guard i + w.count <= chars.count, Array(chars[i..<(i + w.count)]) == w else { throw fail("unexpected token") }
            i += w.count
            return v
        }

        mutating func number() throws(TemplateError) -> Value {
            let start = i
            while i < chars.count, "+-0123456789.eE".unicodeScalars.contains(chars[i]) { i += 1 }
            let text = String(String.UnicodeScalarView(chars[start..<i]))
            if let n = Int(text) { return .int(n) }
            if let d = Double(text) { return .double(d) }
            throw fail("invalid value")
        }

        mutating func string() throws(TemplateError) -> String {
            i += 1
            var out = String.UnicodeScalarView()
            while i < chars.count, chars[i] != "\"" {
                if chars[i] == "\\" {
                    i += 1
                    guard i < chars.count else { break }
                    switch chars[i] {
                    case "n": out.append("\n"); case "t": out.append("\t"); case "r": out.append("\r")
                    case "b": out.append("\u{08}"); case "f": out.append("\u{0C}")
                    case "u":
                        guard i + 4 < chars.count, let code = UInt32(String(String.UnicodeScalarView(chars[(i + 1)...(i + 4)])), radix: 16) else { throw fail("bad \\u escape") }
                        i += 4
                        var scalar = code
                        if (0xD800..<0xDC00).contains(code), i + 6 < chars.count, chars[i + 1] == "\\", chars[i + 2] == "u",
                           let low = UInt32(String(String.UnicodeScalarView(chars[(i + 3)...(i + 6)])), radix: 16), (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            i += 6
                        }
                        out.append(Unicode.Scalar(scalar) ?? "\u{FFFD}")
                    default: out.append(chars[i])
                    }
                } else { out.append(chars[i]) }
                i += 1
            }
            guard i < chars.count else { throw fail("unterminated string") }
            i += 1
            return String(out)
        }
    }
}

/// What JSONReader can build: an enum whose cases are these (JinjaValue; tokenizer.json's RawJSON).
protocol JSONTree {
    static func dictionary(_ pairs: [(String, Self)]) -> Self
    static func array(_ items: [Self]) -> Self
    static func string(_ s: String) -> Self
    static func int(_ i: Int) -> Self
    static func double(_ d: Double) -> Self
    static func bool(_ b: Bool) -> Self
    static var none: Self { get }
}

extension JinjaValue: JSONTree {}
