extension SentencePieceTokenizer {
    /// The naive twin of `encodeWord`: after every merge, rescan all adjacent pairs for the best
    /// one (highest score, or earliest listed merge; leftmost on ties). O(n²); kept so a test
    /// can hold the queued version to the same ids.
    func encodeWordNaive(_ word: ArraySlice<UInt8>, into out: inout [Int32]) throws(TokenizerError) {
        let buffer = Array(word)
        // Symbols as byte ranges of `buffer`, one UTF-8 character each to begin with.
        var symbols: [Range<Int>] = []
        for (k, byte) in buffer.enumerated() {
            if byte & 0xC0 == 0x80, let last = symbols.indices.last { symbols[last] = symbols[last].lowerBound..<(k + 1) } else { symbols.append(k..<(k + 1)) }
        }
        /// The pair's priority (higher merges first) and, for merge lists, the merged id.
        func priority(_ left: Range<Int>, _ right: Range<Int>) -> Float? {
            if splitBeforeSpaces, buffer[right].starts(with: Self.space) { return nil }
            if let mergeRanks {
                guard let a = pieceIDs[buffer[left]], let b = pieceIDs[buffer[right]],
                      let m = mergeRanks[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))] else { return nil }
                return -Float(m.rank)
            }
            return pieceIDs[buffer[left.lowerBound..<right.upperBound]].map { scores[Int($0)] }
        }
        while symbols.count > 1 {
            var best = -1, bestScore = -Float.infinity
            for k in 0..<(symbols.count - 1) {
                if let score = priority(symbols[k], symbols[k + 1]), best < 0 || score > bestScore { best = k; bestScore = score }
            }
            if best < 0 { break }
            symbols[best] = symbols[best].lowerBound..<symbols[best + 1].upperBound
            symbols.remove(at: best + 1)
        }
        for symbol in symbols { try emit(buffer[symbol], of: buffer, into: &out) }
    }
}
