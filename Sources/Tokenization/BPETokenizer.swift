import Synchronization

/// Byte-level BPE (GPT-2 family: GPT-2, SmolLM, StarCoder, …): special tokens are cut out
/// first, the rest is pre-tokenized, each piece mapped to byte-level characters and merged
/// pair by pair in the vocabulary's merge order.
public final class BPETokenizer: Tokenizer {
    public let tokens: [String]
    public let preTokenizer: PreTokenizer
    /// Control and user-defined tokens (`<|im_start|>`, …), matched verbatim in text.
    public let specialTokens: [String: Int32]
    let splitter: SpecialTokenSplitter
    public let bos: Int32?, eos: Int32?, unknown: Int32?
    public let addBOS: Bool
    /// A pre-token that is itself in the vocabulary is one token, whether or not the merges
    /// reach it (Hugging Face's `ignore_merges`; Llama 3 has vocabulary entries no merge builds).
    public let ignoreMerges: Bool
    public let normalizer: Normalizer

    let ids: [String: Int32]
    /// (left id, right id) packed in 64 bits → (rank, merged id).
    let merges: [UInt64: (rank: Int32, merged: Int32)]
    /// byte → the id of its byte-level character's token (-1: not in the vocabulary).
    let byteIDs: [Int32]
    /// Pieces seen before → their ids (bounded: see `WordCache`).
    let cache = Mutex(WordCache<String>())

    public init(tokens: [String], merges: [String], tokenTypes: [Int], preTokenizer: PreTokenizer,
                bos: Int32?, eos: Int32?, unknown: Int32? = nil, addBOS: Bool, ignoreMerges: Bool = false,
                normalizer: Normalizer = .none, source: String) throws(TokenizerError) {
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        var table: [UInt64: (Int32, Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            // Split at the first space byte (a Character split would fuse a space with a
            // following combining mark).
            let u = merge.utf8
            guard let space = u.firstIndex(of: 0x20), let left = String(u[..<space]), let right = String(u[u.index(after: space)...]),
                  let a = ids[left], let b = ids[right], let merged = ids[left + right] else {
                throw .malformed("\(source): merge \(rank) '\(merge)' names tokens that are not in the vocabulary")
            }
            let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
            if table[key] == nil { table[key] = (Int32(rank), merged) }
        }
        // Byte tokens: some vocabularies omit bytes (StarCoder lacks 0xF1 and the bytes UTF-8
        // never uses); text needing one gets the unknown token, or an error if there is none.
        let byteIDs = ByteLevel.characters.map { ids[String($0)] ?? -1 }
        var special: [String: Int32] = [:]
        for (i, type) in tokenTypes.enumerated() where (type == 3 || type == 4) && i < tokens.count && !tokens[i].isEmpty {
            special[tokens[i]] = Int32(i)
        }
        self.tokens = tokens
        self.ids = ids
        self.merges = table.mapValues { (rank: $0.0, merged: $0.1) }
        self.byteIDs = byteIDs
        self.specialTokens = special
        self.splitter = SpecialTokenSplitter(special)
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.unknown = unknown
        self.addBOS = addBOS
        self.ignoreMerges = ignoreMerges
        self.normalizer = normalizer
    }

    public func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) throws(TokenizerError) -> [Int32] {
        var out: [Int32] = []
        if addBOS ?? self.addBOS, let bos { out.append(bos) }
        for segment in splitter.segments(text, parseSpecial: parseSpecial) {
            switch segment {
            case .special(let id): out.append(id)
            case .text(let s):
                for piece in preTokenizer.split(normalizer.apply(s).unicodeScalars) { out += try encodePiece(String(piece)) }
            }
        }
        return out
    }

    /// BPE on one pre-token: its bytes as byte-level tokens, then `mergeSymbols`; short pieces
    /// go through the word cache.
    func encodePiece(_ piece: String) throws(TokenizerError) -> [Int32] {
        let byteCount = piece.utf8.count
        let cacheable = byteCount <= WordCache<String>.defaultMaxKeyBytes
        if cacheable, let hit = cache.withLock({ $0.lookup(piece) }) { return hit }
        if ignoreMerges, let id = ids[ByteLevel.encode(piece.utf8)] { return [id] }
        var symbols: [Int32] = []
        symbols.reserveCapacity(byteCount)
        for byte in piece.utf8 {
            let id = byteIDs[Int(byte)]
            if id >= 0 { symbols.append(id); continue }
            guard let unknown else {
                throw .unsupported("text \(piece.prefix(200).debugDescription) needs byte 0x\(String(byte, radix: 16, uppercase: true)), which this vocabulary cannot represent")
            }
            symbols.append(unknown)
        }
        mergeSymbols(&symbols)
        if cacheable { cache.withLock { $0.insert(piece, keyBytes: byteCount, ids: symbols) } }
        return symbols
    }

    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokens.count else { return [] }
        let token = tokens[Int(id)]
        if specialTokens[token] != nil { return Array(token.utf8) }
        var bytes: [UInt8] = []
        for c in token { if let b = ByteLevel.bytes[c] { bytes.append(b) } else { bytes += Array(String(c).utf8) } }
        return bytes
    }

    /// Byte-level BPE has no start-of-text rule: the sequence is its tokens' bytes in order.
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] { ids.flatMap(tokenBytes) }

    public func decodedLengths(_ ids: [Int32]) -> [Int] { ids.map { tokenBytes($0).count } }
}
