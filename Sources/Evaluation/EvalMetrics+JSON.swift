/// RFC 8259's grammar, checked strictly: Foundation's parser accepts trailing commas
/// (`{"a": 1,}`), which no JSON consumer downstream of a model can rely on.
extension EvalMetrics {
    /// Whether `text` is exactly one JSON value with optional surrounding JSON whitespace.
    /// Nesting deeper than `maxDepth` counts as invalid (it keeps the check's stack bounded).
    public static func isJSON(_ text: String, maxDepth: Int = 512) -> Bool {
        var p = JSONGrammar(bytes: Array(text.utf8), maxDepth: maxDepth)
        p.space()
        guard p.value(depth: 0) else { return false }
        p.space()
        return p.i == p.bytes.count
    }
}

/// A recognizer (no values built) over UTF-8 bytes; every function advances past what it accepts.
struct JSONGrammar {
    let bytes: [UInt8]
    let maxDepth: Int
    var i = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var current: UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func accept(_ ascii: Unicode.Scalar) -> Bool {
        guard current == UInt8(ascii: ascii) else { return false }
        i += 1
        return true
    }

    mutating func space() {
        while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
    }

    mutating func value(depth: Int) -> Bool {
        guard depth < maxDepth, let b = current else { return false }
        switch b {
        case UInt8(ascii: "{"): return members(depth: depth)
        case UInt8(ascii: "["): return elements(depth: depth)
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return word("true")
        case UInt8(ascii: "f"): return word("false")
        case UInt8(ascii: "n"): return word("null")
        default: return number()
        }
    }

    /// `{` [ string `:` value *( `,` string `:` value ) ] `}`
    mutating func members(depth: Int) -> Bool {
        i += 1
        space()
        if accept("}") { return true }
        while true {
            space()
            guard current == UInt8(ascii: "\""), string() else { return false }
            space()
            guard accept(":") else { return false }
            space()
            guard value(depth: depth + 1) else { return false }
            space()
            if accept(",") { continue }
            return accept("}")
        }
    }

    /// `[` [ value *( `,` value ) ] `]`
    mutating func elements(depth: Int) -> Bool {
        i += 1
        space()
        if accept("]") { return true }
        while true {
            space()
            guard value(depth: depth + 1) else { return false }
            space()
            if accept(",") { continue }
            return accept("]")
        }
    }

    mutating func word(_ w: String) -> Bool {
        for c in w.utf8 {
            guard current == c else { return false }
            i += 1
        }
        return true
    }

    mutating func digits() -> Int {
        let start = i
        while let b = current, b >= 0x30, b <= 0x39 { i += 1 }
        return i - start
    }

    /// `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    mutating func number() -> Bool {
        _ = accept("-")
        if accept("0") {
            // no leading zeros
        } else {
            guard let b = current, b >= 0x31, b <= 0x39 else { return false }
            _ = digits()
        }
        if accept("."), digits() == 0 { return false }
        if accept("e") || accept("E") {
            if !accept("+") { _ = accept("-") }
            guard digits() > 0 else { return false }
        }
        return true
    }

    /// `"` (any byte ≥ 0x20 but `"` and `\`, or an escape) `"`; the input is valid UTF-8 already.
    mutating func string() -> Bool {
        i += 1
        while let b = current {
            i += 1
            switch b {
            case UInt8(ascii: "\""): return true
            case UInt8(ascii: "\\"):
                guard let e = current else { return false }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    for _ in 0..<4 {
                        guard let h = current, (0x30...0x39).contains(h) || (0x41...0x46).contains(h) || (0x61...0x66).contains(h) else { return false }
                        i += 1
                    }
                default: return false
                }
            case 0..<0x20: return false
            default: continue
            }
        }
        return false
    }
}
