/// A small JSON reader that keeps object keys in document order (tool definitions are printed
/// back with `tojson`, where order shows). Errors give the line and column.
public enum JSONReader {
    public static func parse(_ text: String) throws(TemplateError) -> JinjaValue { try parseTree(text) }

    /// The document as any tree type (tokenizer.json wants objects as raw key/value pairs).
    static func parseTree<Value: JSONTree>(_ text: String) throws(TemplateError) -> Value {
        var p = Cursor<Value>(bytes: Array(text.utf8))
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw p.fail("unexpected text after the JSON value") }
        return value
    }

    /// Reads UTF-8 bytes: every delimiter JSON has is ASCII, so strings are whole byte runs
    /// between them (decoding scalar by scalar was most of the time spent reading datasets).
    struct Cursor<Value: JSONTree> {
        let bytes: [UInt8]
        var i = 0

        /// Line and column (1-based, in Unicode scalars) of the current position.
        func fail(_ message: String) -> TemplateError {
            var line = 1, column = 1
            for b in bytes[0..<min(i, bytes.count)] {
                if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            }
            return TemplateError(message: "JSON: \(message)", line: line, column: column)
        }

        func at(_ ascii: Unicode.Scalar) -> Bool { i < bytes.count && bytes[i] == UInt8(ascii: ascii) }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws(TemplateError) -> Value {
            guard depth < 128 else { throw fail("nested too deeply") }
            guard i < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1; skipSpace()
                var pairs: [(String, Value)] = []
                if at("}") { i += 1; return .dictionary(pairs) }
                while true {
                    skipSpace()
                    guard at("\"") else { throw fail("expected a string key") }
                    let key = try string()
                    skipSpace()
                    guard at(":") else { throw fail("expected ':'") }
                    i += 1; skipSpace()
                    pairs.append((key, try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated object") }
                    if at(",") { i += 1; continue }
                    if at("}") { i += 1; return .dictionary(pairs) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1; skipSpace()
                var items: [Value] = []
                if at("]") { i += 1; return .array(items) }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unterminated array") }
                    if at(",") { i += 1; continue }
                    if at("]") { i += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .none)
            default: return try number()
            }
        }

        mutating func literal(_ word: String, _ v: Value) throws(TemplateError) -> Value {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, bytes[i..<(i + w.count)].elementsEqual(w) else { throw fail("unexpected token") }
            i += w.count
            return v
        }

        mutating func number() throws(TemplateError) -> Value {
            let start = i
            while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if let n = Int(text) { return .int(n) }
            if let d = Double(text) { return .double(d) }
            throw fail("invalid value")
        }

        /// Four hex digits after `\u` at `from`, or nil.
        func hex4(_ from: Int) -> UInt32? {
            guard from + 4 <= bytes.count else { return nil }
            return UInt32(String(decoding: bytes[from..<(from + 4)], as: UTF8.self), radix: 16)
        }

        mutating func string() throws(TemplateError) -> String {
            i += 1
            var out: [UInt8] = []
            var run = i  // start of the bytes not yet copied to `out`
            var escaped = false
            while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                if bytes[i] == UInt8(ascii: "\\") {
                    escaped = true
                    out += bytes[run..<i]
                    i += 1
                    guard i < bytes.count else { run = i; break }
                    switch bytes[i] {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 < bytes.count, let code = hex4(i + 1) else { throw fail("bad \\u escape") }
                        i += 4
                        var scalar = code
                        if (0xD800..<0xDC00).contains(code), i + 6 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"), bytes[i + 2] == UInt8(ascii: "u"),
                           let low = hex4(i + 3), (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            i += 6
                        }
                        out += String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8
                    // Any other escaped character stands for itself (a multi-byte one's
                    // continuation bytes follow in the next run).
                    default: out.append(bytes[i])
                    }
                    run = i + 1
                }
                i += 1
            }
            guard i < bytes.count else { throw fail("unterminated string") }
            defer { i += 1 }
            guard escaped else { return String(decoding: bytes[run..<i], as: UTF8.self) }
            out += bytes[run..<i]
            return String(decoding: out, as: UTF8.self)
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
