import Synchronization

/// SentencePiece-style BPE (Llama 2, Mistral, Phi-3: GGUF `tokenizer.ggml.model` "llama").
/// Spaces are spelled ▁, a ▁ is put before the text (SentencePiece's dummy prefix) at its start
/// and after every special token, adjacent pieces merge best score first (leftmost on ties)
/// while their concatenation is a vocabulary entry, and a character the vocabulary lacks
/// becomes its UTF-8 bytes as `<0xNN>` tokens (byte fallback). Gemma 4 ranks merges by a
/// merge list instead of scores: then only listed pairs merge, earliest listed first.
public final class SentencePieceTokenizer: Tokenizer {
    /// GGUF token types (llama.cpp's numbering).
    enum Kind: UInt8 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    public let tokens: [String]
    public let scores: [Float]
    public let specialTokens: [String: Int32]
    public let bos: Int32?, eos: Int32?, unknown: Int32?
    public let addBOS: Bool
    /// Where a ▁ is put before text (SentencePiece's add_dummy_prefix and its variants).
    public let spacePrefix: SpacePrefix
    /// Hugging Face Metaspace(split: true): no merge across the start of a ▁, so every ▁ begins
    /// a new word.
    public let splitBeforeSpaces: Bool

    let kinds: [Kind]
    /// Normal and user-defined pieces by their UTF-8 bytes (byte keys: Swift `String` equality
    /// is canonical, which would let "e\u{301}" find the piece "é").
    let pieceIDs: [ArraySlice<UInt8>: Int32]
    /// byte → its `<0xNN>` token.
    let byteIDs: [Int32?]
    let splitter: SpecialTokenSplitter
    /// Whether no piece can span a word start (a ▁ after another character), so words can be
    /// encoded apart and cached: true when no piece has a ▁ after a character other than ▁.
    let wordsAreIndependent: Bool
    /// Words seen before → their ids (bounded: see `WordCache`).
    let cache = Mutex(WordCache<[UInt8]>())
    /// (left id, right id) packed in 64 bits → (rank, merged id), for merge-list vocabularies.
    let mergeRanks: [UInt64: (rank: Int32, merged: Int32)]?

    static let space: [UInt8] = Array("▁".utf8)

    public init(tokens: [String], scores: [Float], tokenTypes: [Int], bos: Int32?, eos: Int32?, unknown: Int32?,
                addBOS: Bool, spacePrefix: SpacePrefix, splitBeforeSpaces: Bool = false, merges: [String]? = nil,
                source: String) throws(TokenizerError) {
        guard scores.count == tokens.count else {
            throw .malformed("\(source): \(tokens.count) tokens but \(scores.count) scores")
        }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw .malformed("\(source): \(tokens.count) tokens but \(tokenTypes.count) token types")
        }
        var kinds = [Kind](repeating: .normal, count: tokens.count)
        var pieceIDs: [ArraySlice<UInt8>: Int32] = [:]
        pieceIDs.reserveCapacity(tokens.count)
        var byteIDs = [Int32?](repeating: nil, count: 256)
        var special: [String: Int32] = [:]
        for (i, token) in tokens.enumerated() {
            let kind = tokenTypes.isEmpty ? .normal : (Kind(rawValue: UInt8(clamping: tokenTypes[i])) ?? .normal)
            kinds[i] = kind
            switch kind {
            case .normal, .userDefined:
                let key = ArraySlice(token.utf8)
                if pieceIDs[key] == nil { pieceIDs[key] = Int32(i) }
                if kind == .userDefined, !token.isEmpty { special[token] = Int32(i) }
            case .control:
                if !token.isEmpty { special[token] = Int32(i) }
            case .byte:
                guard let value = Self.byteValue(token) else {
                    throw .malformed("\(source): token \(i) '\(token)' is typed as a byte but is not spelled <0xNN>")
                }
                if byteIDs[Int(value)] == nil { byteIDs[Int(value)] = Int32(i) }
            case .unknown, .unused: break
            }
        }
        if let merges {
            var table: [UInt64: (rank: Int32, merged: Int32)] = [:]
            table.reserveCapacity(merges.count)
            // Every token by its bytes, to tell a merge naming control or unused tokens (which
            // transformers' generated merges may list; they can never apply, as those are no
            // pieces) from one naming tokens the vocabulary lacks.
            var allTokens: Set<ArraySlice<UInt8>>?
            for (rank, merge) in merges.enumerated() {
                // Split at the first space byte: a Character split would miss " ै" (a space
                // carrying a combining mark is one Character).
                let u = Array(merge.utf8)
                guard let space = u.firstIndex(of: 0x20) else {
                    throw .malformed("\(source): merge \(rank) '\(merge)' is not two tokens separated by a space")
                }
                let left = u[..<space], right = u[(space + 1)...], joined = ArraySlice(left + right)
                guard let a = pieceIDs[left], let b = pieceIDs[right], let merged = pieceIDs[joined] else {
                    if allTokens == nil { allTokens = Set(tokens.map { ArraySlice($0.utf8) }) }
                    if let all = allTokens, all.contains(left), all.contains(right), all.contains(joined) { continue }
                    throw .malformed("\(source): merge \(rank) '\(merge)' names tokens that are not in the vocabulary")
                }
                let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
                if table[key] == nil { table[key] = (Int32(rank), merged) }
            }
            mergeRanks = table
        } else {
            mergeRanks = nil
        }
        self.tokens = tokens
        self.scores = scores
        self.kinds = kinds
        self.pieceIDs = pieceIDs
        self.byteIDs = byteIDs
        self.specialTokens = special
        self.splitter = SpecialTokenSplitter(special)
        self.bos = bos
        self.eos = eos
        self.unknown = unknown
        self.addBOS = addBOS
        self.wordsAreIndependent = splitBeforeSpaces || pieceIDs.keys.allSatisfy(Self.spacesOnlyLead)
        self.spacePrefix = spacePrefix
        self.splitBeforeSpaces = splitBeforeSpaces
    }

    /// Whether every ▁ in `piece` comes before its first other character.
    static func spacesOnlyLead(_ piece: ArraySlice<UInt8>) -> Bool {
        var k = piece.startIndex
        while k + 2 < piece.endIndex, piece[k] == 0xE2, piece[k + 1] == 0x96, piece[k + 2] == 0x81 { k += 3 }
        return !piece[k...].indices.contains { j in
            j + 2 < piece.endIndex && piece[j] == 0xE2 && piece[j + 1] == 0x96 && piece[j + 2] == 0x81
        }
    }

    /// The byte a `<0xNN>` token stands for.
    static func byteValue(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    public func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) throws(TokenizerError) -> [Int32] {
        var out: [Int32] = []
        if addBOS ?? self.addBOS, let bos { out.append(bos) }
        var afterSpecial = true, first = true
        for segment in splitter.segments(text, parseSpecial: parseSpecial) {
            switch segment {
            case .special(let id):
                out.append(id)
                afterSpecial = true
                first = false
            case .text(let s):
                guard !s.isEmpty else { continue }
                try encodeText(s, dummyPrefix: spacePrefix.applies(textStart: first, afterSpecial: afterSpecial, startsWithSpace: s.hasPrefix(" ") || s.hasPrefix("▁")), into: &out)
                afterSpecial = false
                first = false
            }
        }
        return out
    }

    /// One stretch of plain text: spaces to ▁, then merges over its characters, then byte
    /// fallback; word by word through the cache when no piece can span two words.
    func encodeText(_ text: Substring, dummyPrefix: Bool, into out: inout [Int32]) throws(TokenizerError) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(text.utf8.count + 8)
        if dummyPrefix { buffer += Self.space }
        for byte in text.utf8 { if byte == 0x20 { buffer += Self.space } else { buffer.append(byte) } }
        guard wordsAreIndependent else { return try encodeWord(buffer[...], into: &out) }
        // Words start at a ▁ that follows a character other than ▁ ("▁▁▁Hello" is one word).
        var start = 0, i = 0, afterSpace = false
        while i < buffer.count {
            if buffer[i] == 0xE2, i + 2 < buffer.count, buffer[i + 1] == 0x96, buffer[i + 2] == 0x81 {
                if i > start, !afterSpace { try encodeCachedWord(buffer[start..<i], into: &out); start = i }
                afterSpace = true
                i += 3
            } else {
                if buffer[i] & 0xC0 != 0x80 { afterSpace = false }
                i += 1
            }
        }
        if start < buffer.count { try encodeCachedWord(buffer[start...], into: &out) }
    }

    func encodeCachedWord(_ word: ArraySlice<UInt8>, into out: inout [Int32]) throws(TokenizerError) {
        // A long word (a blob without spaces) is encoded once and not remembered.
        guard word.count <= WordCache<[UInt8]>.defaultMaxKeyBytes else { return try encodeWord(word, into: &out) }
        let key = Array(word)
        if let hit = cache.withLock({ $0.lookup(key) }) { out += hit; return }
        var ids: [Int32] = []
        try encodeWord(word, into: &ids)
        cache.withLock { $0.insert(key, keyBytes: key.count, ids: ids) }
        out += ids
    }

    /// Merges over one word's characters (▁ already in place), then byte fallback. A priority
    /// queue of adjacent pairs, O(n log n) in the word's length; `encodeWordNaive` is its
    /// rescanning twin.
    func encodeWord(_ word: ArraySlice<UInt8>, into out: inout [Int32]) throws(TokenizerError) {
        let buffer = Array(word)
        // Symbol i covers buffer[start[i] ..< start[i] + length[i]] (one UTF-8 character to begin
        // with); prev/next link live symbols.
        var start: [Int] = [], length: [Int] = []
        for (k, byte) in buffer.enumerated() {
            if byte & 0xC0 == 0x80, let last = length.indices.last { length[last] += 1 } else { start.append(k); length.append(1) }
        }
        let n = start.count
        guard n > 0 else { return }
        var prev = Array(-1..<(n - 1)), next = Array(1...n)
        next[n - 1] = -1

        var queue = BigramQueue()
        // Merge-list vocabularies: each symbol's id (-1: not a piece), and rank as a negated score
        // (exact in Float below 2^24 merges).
        var symbolIDs: [Int32] = []
        if mergeRanks != nil { symbolIDs = (0..<n).map { pieceIDs[buffer[start[$0]..<(start[$0] + length[$0])]] ?? -1 } }
        func consider(_ left: Int) {
            guard left >= 0 else { return }
            let right = next[left]
            guard right >= 0 else { return }
            if splitBeforeSpaces, buffer[start[right]...].starts(with: Self.space) { return }
            let end = start[right] + length[right]
            if let mergeRanks {
                let a = symbolIDs[left], b = symbolIDs[right]
                guard a >= 0, b >= 0 else { return }
                if let m = mergeRanks[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))] {
                    queue.push(.init(score: -Float(m.rank), left: left, size: end - start[left]))
                }
            } else if let id = pieceIDs[buffer[start[left]..<end]] {
                queue.push(.init(score: scores[Int(id)], left: left, size: end - start[left]))
            }
        }
        for i in 0..<(n - 1) { consider(i) }
        while let bigram = queue.pop() {
            let left = bigram.left, right = next[left]
            // Stale: one side has merged since this pair was queued.
            guard right >= 0, length[left] > 0, length[left] + length[right] == bigram.size else { continue }
            if let mergeRanks, let m = mergeRanks[UInt64(UInt32(bitPattern: symbolIDs[left])) << 32 | UInt64(UInt32(bitPattern: symbolIDs[right]))] {
                symbolIDs[left] = m.merged
            }
            length[left] += length[right]
            length[right] = 0
            next[left] = next[right]
            if next[left] >= 0 { prev[next[left]] = left }
            if prev[left] >= 0 { consider(prev[left]) }
            consider(left)
        }
        var i = 0
        while i >= 0 {
            try emit(buffer[start[i]..<(start[i] + length[i])], of: buffer, into: &out)
            i = next[i]
        }
    }

    /// One merged symbol's id, or its bytes' `<0xNN>` tokens when it is not a piece (byte fallback).
    func emit(_ piece: ArraySlice<UInt8>, of word: [UInt8], into out: inout [Int32]) throws(TokenizerError) {
        if let id = pieceIDs[piece] { out.append(id); return }
        for byte in piece {
            guard let id = byteIDs[Int(byte)] ?? unknown else {
                throw .unsupported("text \(String(decoding: word.prefix(200), as: UTF8.self).debugDescription) needs byte 0x\(String(byte, radix: 16, uppercase: true)), which this vocabulary cannot represent")
            }
            out.append(id)
        }
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokens.count else { return [] }
        switch kinds[Int(id)] {
        case .byte: return Self.byteValue(tokens[Int(id)]).map { [$0] } ?? []
        case .control, .userDefined: return Array(tokens[Int(id)].utf8)
        case .normal, .unknown, .unused:
            var bytes: [UInt8] = []
            let u = Array(tokens[Int(id)].utf8)
            var k = 0
            while k < u.count {
                if k + 2 < u.count, u[k] == 0xE2, u[k + 1] == 0x96, u[k + 2] == 0x81 { bytes.append(0x20); k += 3 } else { bytes.append(u[k]); k += 1 }
            }
            return bytes
        }
    }

    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (id, count) in zip(ids, decodedLengths(ids)) {
            let piece = tokenBytes(id)
            bytes += piece.suffix(count)
        }
        return bytes
    }

    /// Each token's bytes, less the dummy-prefix space where encode put one: on the first text
    /// token at the start and after each special token.
    public func decodedLengths(_ ids: [Int32]) -> [Int] {
        var lengths: [Int] = []
        lengths.reserveCapacity(ids.count)
        var afterSpecial = true, first = true
        for id in ids {
            let piece = tokenBytes(id)
            if id >= 0, Int(id) < tokens.count, kinds[Int(id)] == .control || kinds[Int(id)] == .userDefined {
                lengths.append(piece.count)
                afterSpecial = true
            } else {
                // Whether encode put a ▁ here; a text that began with a space itself is ambiguous
                // under the "unless it starts with ▁" schemes, and is read as prefixed (as HF's decoder does).
                let prefixed = afterSpecial && spacePrefix.applies(textStart: first, afterSpecial: true, startsWithSpace: false)
                lengths.append(prefixed && piece.first == 0x20 ? piece.count - 1 : piece.count)
                afterSpecial = false
            }
            first = false
        }
        return lengths
    }
}

/// Where a ▁ goes before a stretch of text (the text between special tokens).
public enum SpacePrefix: String, Sendable {
    /// Never (Gemma).
    case none
    /// SentencePiece's add_dummy_prefix as Llama 2's own tokenizer and llama.cpp apply it: before
    /// every stretch, at the start and after each special token.
    case everyStretch
    /// Hugging Face Metaspace(prepend_scheme: "first"): only before a stretch that starts the
    /// text, and not when it already begins with a space.
    case firstUnlessSpace
    /// Hugging Face Metaspace(prepend_scheme: "always"): every stretch not already beginning
    /// with a space.
    case everyUnlessSpace

    func applies(textStart: Bool, afterSpecial: Bool, startsWithSpace: Bool) -> Bool {
        switch self {
        case .none: return false
        case .everyStretch: return textStart || afterSpecial
        case .firstUnlessSpace: return textStart && !startsWithSpace
        case .everyUnlessSpace: return (textStart || afterSpecial) && !startsWithSpace
        }
    }
}

/// Candidate merges, best score first and leftmost among equal scores.
struct BigramQueue {
    struct Bigram { let score: Float; let left: Int; let size: Int }
    var heap: [Bigram] = []

    static func before(_ a: Bigram, _ b: Bigram) -> Bool { a.score > b.score || (a.score == b.score && a.left < b.left) }

    mutating func push(_ b: Bigram) {
        heap.append(b)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Bigram? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < heap.count, Self.before(heap[l], heap[best]) { best = l }
                if r < heap.count, Self.before(heap[r], heap[best]) { best = r }
                if best == i { break }
                heap.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
