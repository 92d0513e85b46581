/// The merge step of byte-level BPE: the adjacent pair of lowest merge rank merges first, the
/// leftmost of equal pairs first, until no adjacent pair has a merge. Two implementations with
/// one result: `mergeSymbols` (a priority queue, O(n log n) in the piece's length n, so a long
/// unbroken string costs milliseconds) and `mergeSymbolsNaive` (the obvious rescan after every
/// merge, O(n²), kept as the reference the fast one is tested against).
extension BPETokenizer {
    /// Below this many symbols a rescan beats building a queue (most words are short).
    static var queueThreshold: Int { 24 }

    @inline(__always)
    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Merges `symbols` (token ids, one per byte to begin with) in place.
    func mergeSymbols(_ symbols: inout [Int32]) {
        if symbols.count < Self.queueThreshold { mergeSymbolsNaive(&symbols) } else { mergeSymbolsQueued(&symbols) }
    }

    /// The priority-queue merge. Symbols stay at their first position and form a linked list;
    /// the queue holds one entry per adjacent pair with a merge, keyed (rank, left position), so
    /// its minimum is the lowest rank and, among equal ranks, the leftmost pair, as in the
    /// rescan. An entry goes stale when either side merges with something else; it is skipped
    /// when the pair now at its position has another rank (a rank names exactly one pair).
    func mergeSymbolsQueued(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        precondition(n < Int(UInt32.max), "piece too long for 32-bit positions")
        var next = [Int32](repeating: -1, count: n), prev = [Int32](repeating: -1, count: n)
        for i in 0..<n { next[i] = i + 1 < n ? Int32(i + 1) : -1; prev[i] = Int32(i - 1) }
        var queue = MinQueue()
        queue.reserve(n)
        func consider(_ left: Int) {
            let right = Int(next[left])
            guard right >= 0, let m = merges[Self.pairKey(symbols[left], symbols[right])] else { return }
            queue.push(UInt64(UInt32(bitPattern: m.rank)) << 32 | UInt64(left))
        }
        for i in 0..<(n - 1) { consider(i) }
        while let top = queue.pop() {
            let rank = Int32(truncatingIfNeeded: top >> 32), left = Int(top & 0xFFFF_FFFF)
            let right = Int(next[left])
            // A merged-away symbol has no next and is never a left side again (-1 marks it).
            guard symbols[left] >= 0, right >= 0, let m = merges[Self.pairKey(symbols[left], symbols[right])], m.rank == rank else { continue }
            symbols[left] = m.merged
            symbols[right] = -1
            next[left] = next[right]
            next[right] = -1
            if next[left] >= 0 { prev[Int(next[left])] = Int32(left) }
            if prev[left] >= 0 { consider(Int(prev[left])) }
            consider(left)
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 { out.append(symbols[i]); i = Int(next[i]) }
        symbols = out
    }

    /// The rescan merge (the naive twin): find the lowest-rank pair, leftmost first, merge it,
    /// repeat.
    func mergeSymbolsNaive(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var best = -1, bestRank = Int32.max, bestMerged: Int32 = 0
            for k in 0..<(symbols.count - 1) {
                if let m = merges[Self.pairKey(symbols[k], symbols[k + 1])], m.rank < bestRank { best = k; bestRank = m.rank; bestMerged = m.merged }
            }
            if best < 0 { break }
            symbols[best] = bestMerged
            symbols.remove(at: best + 1)
        }
    }
}

/// A binary min-heap of packed 64-bit keys (priority in the high bits, position in the low).
struct MinQueue {
    private var heap: [UInt64] = []

    mutating func reserve(_ count: Int) { heap.reserveCapacity(count) }

    mutating func push(_ key: UInt64) {
        heap.append(key)
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard h[i] < h[parent] else { break }
                h.swapAt(i, parent)
                i = parent
            }
        }
    }

    mutating func pop() -> UInt64? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        heap.withUnsafeMutableBufferPointer { h in
            h[0] = last
            var i = 0
            let count = h.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < count, h[l] < h[best] { best = l }
                if r < count, h[r] < h[best] { best = r }
                if best == i { break }
                h.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
