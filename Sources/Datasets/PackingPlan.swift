import TensorCore

/// One epoch laid out: which examples share each row, and rows grouped into batches.
///
/// Packed rows are filled window by window: the epoch's order is cut into windows of
/// `window` examples and each window is packed first-fit-decreasing, which fills rows far
/// better than taking examples strictly in order (a contiguous run stops at the first example
/// that fits nowhere) while keeping the shuffle's mixing across the epoch. The plan is a pure
/// function of the order and the options, so a data cursor is just a batch index and a resumed
/// run rebuilds the same plan from the seed.
public struct PackingPlan: Sendable, Equatable {
    /// Example indices (into the dataset), row after row.
    public let members: [Int]
    /// Row r holds `members[rowStarts[r]..<rowStarts[r + 1]]`; `rowStarts.count` is rows + 1.
    public let rowStarts: [Int]
    public let batchSize: Int
    public let maxSeqLen: Int
    /// Real tokens over the whole plan.
    public let tokens: Int

    /// Examples per packing window: large enough that first-fit-decreasing finds partners for
    /// long examples, small enough that a row's examples still come from one stretch of the
    /// shuffled order.
    public static let window = 512

    /// Plans `order` (indices into `lengths`, each ≤ `options.maxSeqLen`). `rowShuffle`, when
    /// given, permutes the rows of each window so batches do not run from long to short
    /// examples inside a window (first-fit-decreasing opens rows longest first).
    public init(lengths: [Int], order: [Int], options: BatchingOptions, rowShuffle: RandomGenerator? = nil) {
        var members: [Int] = []
        members.reserveCapacity(order.count)
        var rowStarts = [0]
        var tokens = 0
        var rng = rowShuffle
        switch options.mode {
        case .padded:
            for i in order {
                precondition(lengths[i] <= options.maxSeqLen, "PackingPlan: example longer than a row; fit(_:) it first")
                members.append(i)
                rowStarts.append(members.count)
                tokens += lengths[i]
            }
        case .packed:
            var start = 0
            while start < order.count {
                let end = min(start + Self.window, order.count)
                var rows = Self.firstFitDecreasing(order[start..<end], lengths: lengths, capacity: options.maxSeqLen)
                if var g = rng {
                    Self.shuffle(&rows, &g)
                    rng = g
                }
                for row in rows {
                    members += row
                    rowStarts.append(members.count)
                }
                start = end
            }
            tokens = order.reduce(0) { $0 + lengths[$1] }
        }
        self.members = members
        self.rowStarts = rowStarts
        self.batchSize = options.batchSize
        self.maxSeqLen = options.maxSeqLen
        self.tokens = tokens
    }

    public var rowCount: Int { rowStarts.count - 1 }
    public var batchCount: Int { (rowCount + batchSize - 1) / batchSize }

    /// Real tokens over row capacity (rows × max_seq_len).
    public var efficiency: Double { rowCount == 0 ? 0 : Double(tokens) / Double(rowCount * maxSeqLen) }

    /// The example indices of each row of batch `b` (the last batch may have fewer rows).
    public func rows(ofBatch b: Int) -> [ArraySlice<Int>] {
        precondition(b >= 0 && b < batchCount, "PackingPlan: batch \(b) of \(batchCount)")
        return (b * batchSize..<min((b + 1) * batchSize, rowCount)).map { members[rowStarts[$0]..<rowStarts[$0 + 1]] }
    }

    /// Rows of `items` under first-fit-decreasing: longest first (ties in order), each into the
    /// first open row with room. Deterministic.
    static func firstFitDecreasing(_ items: ArraySlice<Int>, lengths: [Int], capacity: Int) -> [[Int]] {
        let sorted = items.enumerated().sorted { a, b in
            let (la, lb) = (lengths[a.element], lengths[b.element])
            return la != lb ? la > lb : a.offset < b.offset
        }
        var rows: [[Int]] = []
        var free: [Int] = []
        for (_, i) in sorted {
            let n = lengths[i]
            precondition(n <= capacity, "PackingPlan: example longer than a row; fit(_:) it first")
            if let r = free.firstIndex(where: { $0 >= n }) {
                rows[r].append(i)
                free[r] -= n
            } else {
                rows.append([i])
                free.append(capacity - n)
            }
        }
        return rows
    }

    /// Fisher–Yates with the engine's generator (stable across Swift releases).
    static func shuffle(_ rows: inout [[Int]], _ rng: inout RandomGenerator) {
        var i = rows.count - 1
        while i > 0 {
            rows.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            i -= 1
        }
    }
}
