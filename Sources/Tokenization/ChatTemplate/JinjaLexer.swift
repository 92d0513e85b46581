/// Splits a template into text and tags, applying Jinja's whitespace rules as transformers
/// configures them (trim_blocks and lstrip_blocks on; `-` strips, `+` keeps).
struct JinjaLexer {
    enum Piece {
        case text(String)
        case output(String, line: Int, column: Int)
        case statement(String, line: Int, column: Int)
    }

    static func pieces(_ source: String) throws(TemplateError) -> [Piece] {
        let s = Array(source)
        var pieces: [Piece] = []
        var text = ""
        var i = 0
        var trimNextNewline = false, stripNextWhitespace = false
        func position(_ index: Int) -> (Int, Int) {
            var line = 1, column = 1
            for c in s[0..<min(index, s.count)] { if c == "\n" { line += 1; column = 1 } else { column += 1 } }
            return (line, column)
        }
        func flushText() { if !text.isEmpty { pieces.append(.text(text)); text = "" } }
        while i < s.count {
            if s[i] == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" {
                let kind = s[i + 1]
                let close: Character = kind == "{" ? "}" : kind == "%" ? "%" : "#"
                var j = i + 2
                var leftStrip = false, leftKeep = false
                if j < s.count, s[j] == "-" { leftStrip = true; j += 1 } else if j < s.count, s[j] == "+" { leftKeep = true; j += 1 }
                // Find the closing delimiter outside string literals.
                var k = j, quote: Character? = nil
                while k + 1 < s.count {
                    if let q = quote { if s[k] == "\\" { k += 2; continue }; if s[k] == q { quote = nil } }
                    else if kind != "#" && (s[k] == "'" || s[k] == "\"") { quote = s[k] }
                    else if s[k] == close && s[k + 1] == "}" { break }
                    k += 1
                }
                guard k + 1 < s.count else {
                    let (l, c) = position(i)
                    throw TemplateError(message: "unclosed '{\(kind)' tag", line: l, column: c)
                }
                var body = String(s[j..<k])
                var rightStrip = false
                if body.hasSuffix("-") { rightStrip = true; body.removeLast() }
                else if body.hasSuffix("+") { body.removeLast() }
                // Whitespace before the tag.
                if leftStrip {
                    while let last = text.last, last.isWhitespace { text.removeLast() }
                } else if kind != "{" && !leftKeep {
                    // lstrip_blocks: spaces/tabs from the line start up to a block or comment tag.
                    var t = text.endIndex
                    while t > text.startIndex, text[text.index(before: t)] == " " || text[text.index(before: t)] == "\t" { t = text.index(before: t) }
                    let atLineStart = t == text.startIndex ? (pieces.isEmpty || Self.endsWithNewline(pieces.last)) : text[text.index(before: t)] == "\n"
                    if atLineStart { text.removeSubrange(t...) }
                }
                flushText()
                let (line, column) = position(i)
                switch kind {
                case "{": pieces.append(.output(body, line: line, column: column))
                case "%": pieces.append(.statement(body, line: line, column: column))
                default: break  // comment
                }
                i = k + 2
                stripNextWhitespace = rightStrip
                trimNextNewline = !rightStrip && kind != "{"  // trim_blocks
                continue
            }
            if stripNextWhitespace {
                if s[i].isWhitespace { i += 1; continue }
                stripNextWhitespace = false
            }
            if trimNextNewline {
                trimNextNewline = false
                if s[i] == "\n" { i += 1; continue }
                if s[i] == "\r\n" { i += 1; continue }
            }
            text.append(s[i])
            i += 1
        }
        flushText()
        return pieces
    }

    static func endsWithNewline(_ piece: Piece?) -> Bool {
        if case .text(let t)? = piece { return t.hasSuffix("\n") }
        return false
    }
}

/// Tokens inside a tag.
enum JinjaToken: Equatable {
    case name(String), string(String), int(Int), double(Double), op(String)
}

extension JinjaLexer {
    static func tokens(_ source: String, line: Int, column: Int) throws(TemplateError) -> [JinjaToken] {
        let s = Array(source)
        var out: [JinjaToken] = []
        var i = 0
        let twoCharOps: Set<String> = ["==", "!=", "<=", ">=", "//", "**"]
        while i < s.count {
            let c = s[i]
            if c.isWhitespace { i += 1; continue }
            if c.isLetter || c == "_" {
                var j = i
                while j < s.count, s[j].isLetter || s[j].isNumber || s[j] == "_" { j += 1 }
                out.append(.name(String(s[i..<j]))); i = j; continue
            }
            if c.isASCII && c.isNumber {
                var j = i, isDouble = false
                while j < s.count, (s[j].isASCII && s[j].isNumber) || (s[j] == "." && !isDouble && j + 1 < s.count && s[j + 1].isNumber) {
                    if s[j] == "." { isDouble = true }
                    j += 1
                }
                let text = String(s[i..<j])
                out.append(isDouble ? .double(Double(text) ?? 0) : .int(Int(text) ?? 0)); i = j; continue
            }
            if c == "'" || c == "\"" {
                var j = i + 1, value = ""
                while j < s.count, s[j] != c {
                    if s[j] == "\\", j + 1 < s.count {
                        j += 1
                        switch s[j] { case "n": value.append("\n"); case "t": value.append("\t"); case "r": value.append("\r")
                        default: value.append(s[j]) }
                    } else { value.append(s[j]) }
                    j += 1
                }
                guard j < s.count else { throw TemplateError(message: "unterminated string literal", line: line, column: column) }
                out.append(.string(value)); i = j + 1; continue
            }
            if i + 1 < s.count, twoCharOps.contains(String(s[i...(i + 1)])) { out.append(.op(String(s[i...(i + 1)]))); i += 2; continue }
            if "+-*/%~<>=()[]{}.,:|!".contains(c) { out.append(.op(String(c))); i += 1; continue }
            throw TemplateError(message: "unexpected character '\(c)'", line: line, column: column)
        }
        return out
    }
}
