import Formats

extension BPETokenizer {
    /// SHA-256 of everything that decides how text becomes ids: the vocabulary, the merges in
    /// rank order, the special tokens, BOS/EOS/unknown and the pre-tokenizer. Two tokenizers
    /// with the same fingerprint encode every text alike, so caches of token ids key on it
    /// rather than on the model file (a re-quantized model keeps its tokenizer).
    public var fingerprint: [UInt8] {
        var bytes: [UInt8] = Array("bpe-v2\0\(preTokenizer.rawValue)\0\(addBOS)\0\(bos ?? -1)\0\(eos ?? -1)\0\(unknown ?? -1)\0\(ignoreMerges)\0\(normalizer.rawValue)\0".utf8)
        func append(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        append(Int32(tokens.count))
        for t in tokens { bytes += t.utf8; bytes.append(0) }
        let ranked = merges.sorted { $0.value.rank < $1.value.rank }
        append(Int32(ranked.count))
        for (pair, merge) in ranked {
            append(Int32(truncatingIfNeeded: pair >> 32))
            append(Int32(truncatingIfNeeded: pair))
            append(merge.merged)
        }
        for (text, id) in specialTokens.sorted(by: { $0.value < $1.value }) { append(id); bytes += text.utf8; bytes.append(0) }
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

extension SentencePieceTokenizer {
    /// SHA-256 of the pieces, scores, kinds, merges, special tokens and spacing rules.
    public var fingerprint: [UInt8] {
        var bytes: [UInt8] = Array("spm-v1\0\(spacePrefix.rawValue)\0\(splitBeforeSpaces)\0\(addBOS)\0\(bos ?? -1)\0\(eos ?? -1)\0\(unknown ?? -1)\0".utf8)
        func append(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        append(Int32(tokens.count))
        for (i, t) in tokens.enumerated() {
            bytes += t.utf8
            bytes.append(0)
            append(Int32(bitPattern: scores[i].bitPattern))
            bytes.append(kinds[i].rawValue)
        }
        if let mergeRanks {
            let ranked = mergeRanks.sorted { $0.value.rank < $1.value.rank }
            append(Int32(ranked.count))
            for (pair, merge) in ranked {
                append(Int32(truncatingIfNeeded: pair >> 32))
                append(Int32(truncatingIfNeeded: pair))
                append(merge.merged)
            }
        }
        for (text, id) in specialTokens.sorted(by: { $0.value < $1.value }) { append(id); bytes += text.utf8; bytes.append(0) }
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }
}
