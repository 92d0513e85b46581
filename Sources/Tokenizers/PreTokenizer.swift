/// Splits text into the chunks BPE runs on, as each model family's tokenizer does. Written as
/// scanners rather than regular expressions: they are the tokenizer's hot loop.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    case gpt2
    /// Every digit alone first, then GPT-2 (SmolLM, StarCoder, Refact: llama.cpp's `smollm`,
    /// `starcoder`, `refact`; Hugging Face's Digits(individual) + ByteLevel).
    case digitsThenGPT2

    /// The pre-tokenizer of a GGUF `tokenizer.ggml.pre` name.
    public init?(ggufName: String) {
        switch ggufName {
        case "gpt-2", "gpt2", "default", "mpt", "olmo", "jais": self = .gpt2
        case "smollm", "starcoder", "refact", "codeshell", "command-r": self = .digitsThenGPT2
        default: return nil
        }
    }

    public func split(_ text: Substring.UnicodeScalarView) -> [Substring.UnicodeScalarView] {
        var pieces: [Substring.UnicodeScalarView] = []
        switch self {
        case .gpt2:
            Self.gpt2(text, into: &pieces)
        case .digitsThenGPT2:
            var start = text.startIndex, i = text.startIndex
            while i < text.endIndex {
                if Self.isNumber(text[i]) {
                    if start < i { Self.gpt2(text[start..<i], into: &pieces) }
                    let next = text.index(after: i)
                    pieces.append(text[i..<next])
                    start = next
                    i = next
                } else {
                    i = text.index(after: i)
                }
            }
            if start < text.endIndex { Self.gpt2(text[start...], into: &pieces) }
        }
        return pieces
    }

    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return (c.value | 0x20) >= 0x61 && (c.value | 0x20) <= 0x7A }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c.isASCII ? (c == " " || (c.value >= 9 && c.value <= 13)) : c.properties.isWhitespace
    }

    /// \p{L}, \p{N}, or neither-nor-space; nil for whitespace.
    enum CharacterClass: Equatable {
        case letter, number, other
        init?(_ c: Unicode.Scalar) {
            if isLetter(c) { self = .letter } else if isNumber(c) { self = .number } else if isSpace(c) { return nil } else { self = .other }
        }
    }

    /// The GPT-2 pattern over one fragment.
    static func gpt2(_ s: Substring.UnicodeScalarView, into pieces: inout [Substring.UnicodeScalarView]) {
        var i = s.startIndex
        let end = s.endIndex
        func at(_ j: Substring.UnicodeScalarView.Index) -> Unicode.Scalar? { j < end ? s[j] : nil }
        while i < end {
            let c = s[i]
            // Contractions: 's 't 're 've 'm 'll 'd (case-sensitive).
            if c == "'", let n1 = at(s.index(after: i)) {
                let n2 = at(s.index(i, offsetBy: 2, limitedBy: end) ?? end)
                var length = 0
                if "stmd".unicodeScalars.contains(n1) { length = 2 }
                else if let n2, (n1 == "r" && n2 == "e") || (n1 == "v" && n2 == "e") || (n1 == "l" && n2 == "l") { length = 3 }
                if length > 0 {
                    let j = s.index(i, offsetBy: length)
                    pieces.append(s[i..<j]); i = j
                    continue
                }
            }
            // An optional single space before a letter, number or other-symbol run.
            var j = i
            if c == " ", let n = at(s.index(after: i)), !isSpace(n) { j = s.index(after: i) }
            let first = s[j]
            if let kind = CharacterClass(first) {
                var k = s.index(after: j)
                while k < end, CharacterClass(s[k]) == kind { k = s.index(after: k) }
                pieces.append(s[i..<k]); i = k
                continue
            }
            // Whitespace: the run, minus its last character when a non-space follows
            // (\s+(?!\S)); a lone leftover whitespace character is its own piece (\s+).
            var k = i
            while k < end, isSpace(s[k]) { k = s.index(after: k) }
            if k < end, s.index(after: i) < k {
                k = s.index(before: k)
            }
            pieces.append(s[i..<k]); i = k
        }
    }
}
