import Formats

/// The bytes a tokenizer fingerprint hashes, built once for both tokenizer kinds so their
/// merges and special tokens are serialised the same way.
struct FingerprintBuilder {
    private(set) var bytes: [UInt8]

    init(header: String) { bytes = Array(header.utf8) }

    mutating func append(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func append(_ text: String) { bytes += text.utf8; bytes.append(0) }
    mutating func append(_ byte: UInt8) { bytes.append(byte) }

    /// Merges in rank order: count, then (left, right, merged) per merge.
    mutating func append(merges: [UInt64: (rank: Int32, merged: Int32)]) {
        let ranked = merges.sorted { $0.value.rank < $1.value.rank }
        append(Int32(ranked.count))
        for (pair, merge) in ranked {
            append(Int32(truncatingIfNeeded: pair >> 32))
            append(Int32(truncatingIfNeeded: pair))
            append(merge.merged)
        }
    }

    /// Special tokens by id, then the SHA-256 of everything appended.
    mutating func finish(specialTokens: [String: Int32]) -> [UInt8] {
        for (text, id) in specialTokens.sorted(by: { $0.value < $1.value }) { append(id); append(text) }
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

extension BPETokenizer {
    /// SHA-256 of everything that decides how text becomes ids: the vocabulary, the merges in
    /// rank order, the special tokens, BOS/EOS/unknown and the pre-tokenizer. Two tokenizers
    /// with the same fingerprint encode every text alike, so caches of token ids key on it
    /// rather than on the model file (a re-quantized model keeps its tokenizer).
    public var fingerprint: [UInt8] {
        var b = FingerprintBuilder(header: "bpe-v2\0\(preTokenizer.rawValue)\0\(addBOS)\0\(bos ?? -1)\0\(eos ?? -1)\0\(unknown ?? -1)\0\(ignoreMerges)\0\(normalizer.rawValue)\0")
        b.append(Int32(tokens.count))
        for t in tokens { b.append(t) }
        b.append(merges: merges)
        return b.finish(specialTokens: specialTokens)
    }
}

extension SentencePieceTokenizer {
    /// SHA-256 of the pieces, scores, kinds, merges, special tokens and spacing rules.
    public var fingerprint: [UInt8] {
        var b = FingerprintBuilder(header: "spm-v1\0\(spacePrefix.rawValue)\0\(splitBeforeSpaces)\0\(addBOS)\0\(bos ?? -1)\0\(eos ?? -1)\0\(unknown ?? -1)\0")
        b.append(Int32(tokens.count))
        for (i, t) in tokens.enumerated() {
            b.append(t)
            b.append(Int32(bitPattern: scores[i].bitPattern))
            b.append(kinds[i].rawValue)
        }
        if let mergeRanks { b.append(merges: mergeRanks) }
        return b.finish(specialTokens: specialTokens)
    }
}
