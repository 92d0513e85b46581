/// Splits text into the chunks BPE runs on, as each model family's tokenizer does. Written as
/// scanners rather than regular expressions: they are the tokenizer's hot loop.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    case gpt2
    /// Every digit alone first, then GPT-2 (SmolLM, StarCoder, Refact: llama.cpp's `smollm`,
    /// `starcoder`, `refact`; Hugging Face's Digits(individual) + ByteLevel).
    case digitsThenGPT2
    /// Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case llama3
    /// Qwen2: Llama 3's pattern with single digits (\p{N} instead of \p{N}{1,3}).
    case qwen2

    /// The pre-tokenizer of a GGUF `tokenizer.ggml.pre` name.
    public init?(ggufName: String) {
        switch ggufName {
        case "gpt-2", "gpt2", "default", "mpt", "olmo", "jais": self = .gpt2
        case "smollm", "starcoder", "refact", "codeshell", "command-r": self = .digitsThenGPT2
        case "llama-bpe", "llama3", "llama-v3": self = .llama3
        case "qwen2", "deepseek-r1-qwen": self = .qwen2
        default: return nil
        }
    }

    /// The names `init(ggufName:)` accepts, for error messages.
    static let supportedGGUFNames = "gpt-2, smollm, starcoder, refact, llama-bpe, qwen2"

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
        case .llama3:
            Self.llama3(text, maxDigits: 3, into: &pieces)
        case .qwen2:
            Self.llama3(text, maxDigits: 1, into: &pieces)
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

    /// The Llama 3 / Qwen2 pattern over one fragment; `maxDigits` is the longest number piece.
    /// Each step below is one alternative of the pattern, tried in order at the current position.
    static func llama3(_ s: Substring.UnicodeScalarView, maxDigits: Int, into pieces: inout [Substring.UnicodeScalarView]) {
        var i = s.startIndex
        let end = s.endIndex
        func at(_ j: Substring.UnicodeScalarView.Index) -> Unicode.Scalar? { j < end ? s[j] : nil }
        func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\n" || c == "\r" }
        while i < end {
            let c = s[i]
            let next = s.index(after: i)
            // (?i:'s|'t|'re|'ve|'m|'ll|'d): ASCII case folding only (see `contractionLength`).
            if c == "'", let length = contractionLength(s, after: next) {
                let j = s.index(i, offsetBy: length)
                pieces.append(s[i..<j]); i = j
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            var letters: Substring.UnicodeScalarView.Index?
            if isLetter(c) { letters = i } else if !isNewline(c), !isNumber(c), let n = at(next), isLetter(n) { letters = next }
            if let start = letters {
                var k = s.index(after: start)
                while k < end, isLetter(s[k]) { k = s.index(after: k) }
                pieces.append(s[i..<k]); i = k
                continue
            }
            // \p{N}{1,maxDigits}
            if isNumber(c) {
                var k = next, count = 1
                while k < end, count < maxDigits, isNumber(s[k]) { k = s.index(after: k); count += 1 }
                pieces.append(s[i..<k]); i = k
                continue
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            var symbols: Substring.UnicodeScalarView.Index?
            if CharacterClass(c) == .other { symbols = i } else if c == " ", let n = at(next), CharacterClass(n) == .other { symbols = next }
            if let start = symbols {
                var k = s.index(after: start)
                while k < end, CharacterClass(s[k]) == .other { k = s.index(after: k) }
                while k < end, isNewline(s[k]) { k = s.index(after: k) }
                pieces.append(s[i..<k]); i = k
                continue
            }
            // Whitespace from here on. \s*[\r\n]+: through the run's last newline, if it has one.
            var k = i, lastNewline: Substring.UnicodeScalarView.Index?
            while k < end, isSpace(s[k]) {
                if isNewline(s[k]) { lastNewline = k }
                k = s.index(after: k)
            }
            if let lastNewline {
                let j = s.index(after: lastNewline)
                pieces.append(s[i..<j]); i = j
                continue
            }
            // \s+(?!\S) leaves the run's last character to the next piece when a non-space
            // follows; a lone whitespace character is its own piece (\s+).
            if k < end, next < k { k = s.index(before: k) }
            pieces.append(s[i..<k]); i = k
        }
    }

    /// Length of `'` plus a contraction (s t m d re ve ll, either case) starting at `j`, or nil.
    /// Case-insensitive as Hugging Face's regex engine (Onig) folds: the long s "ſ" (U+017F) is
    /// an "s" too; no other non-ASCII letter folds to one of these.
    static func contractionLength(_ s: Substring.UnicodeScalarView, after j: Substring.UnicodeScalarView.Index) -> Int? {
        guard j < s.endIndex else { return nil }
        if s[j] == "\u{17F}" { return 2 }
        guard s[j].isASCII else { return nil }
        let a = s[j].value | 0x20
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 } // s t m d
        let k = s.index(after: j)
        guard k < s.endIndex, s[k].isASCII else { return nil }
        let b = s[k].value | 0x20
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 } // re ve ll
        return nil
    }
}
