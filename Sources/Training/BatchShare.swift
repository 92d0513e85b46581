/// Which rows of an optimizer step a rank computes.
///
/// A step's global batch is the recipe's, whatever the number of ranks: `grad_accumulation`
/// micro-batches of `batch_size` rows, taken from the data order in sequence (the cursor and
/// the order are global). Number its rows 0 ..< R, micro-batch by micro-batch (R = micro-batches
/// × rows); rank k of N computes rows ⌊k·R/N⌋ ..< ⌊(k+1)·R/N⌋. When N divides the micro-batch
/// count every rank computes whole micro-batches (exactly the batches one process computes);
/// otherwise a rank may compute part of a micro-batch, and draws that micro-batch's dropout
/// masks from the slice's offset. One process (N = 1) computes every micro-batch whole, as
/// before. Nothing about the data order depends on N, so a run saved on N ranks resumes on any
/// other number.
public struct BatchShare: Sendable, Equatable {
    public let rank: Int, ranks: Int
    /// Micro-batches per step (`training.grad_accumulation`) and rows per micro-batch
    /// (`training.batch_size`).
    public let microBatches: Int, rowsPerMicroBatch: Int

    /// Rows `rows` of micro-batch `microBatch`.
    public struct Part: Sendable, Equatable {
        public var microBatch: Int
        public var rows: Range<Int>
        public init(microBatch: Int, rows: Range<Int>) {
            self.microBatch = microBatch
            self.rows = rows
        }
    }

    public init(rank: Int, ranks: Int, microBatches: Int, rowsPerMicroBatch: Int) {
        precondition(ranks >= 1 && (0..<ranks).contains(rank) && microBatches >= 1 && rowsPerMicroBatch >= 1,
                     "BatchShare: rank \(rank) of \(ranks), \(microBatches) × \(rowsPerMicroBatch) rows")
        self.rank = rank
        self.ranks = ranks
        self.microBatches = microBatches
        self.rowsPerMicroBatch = rowsPerMicroBatch
    }

    /// Rows in a step's global batch.
    public var globalRows: Int { microBatches * rowsPerMicroBatch }

    /// This rank's rows of the global batch, numbered micro-batch by micro-batch.
    public var globalRange: Range<Int> { bounds(rank) }

    /// Rows this rank computes per step.
    public var rowCount: Int { globalRange.count }

    /// The fewest and most rows any rank computes.
    public var rowsPerRank: ClosedRange<Int> {
        let counts = (0..<ranks).map { bounds($0).count }
        return (counts.min() ?? 0)...(counts.max() ?? 0)
    }

    /// This rank's rows as (micro-batch, rows) pieces, in order.
    public var parts: [Part] {
        let range = globalRange
        guard !range.isEmpty else { return [] }
        let b = rowsPerMicroBatch
        return (range.lowerBound / b...(range.upperBound - 1) / b).map { m in
            Part(microBatch: m, rows: max(range.lowerBound, m * b) - m * b..<min(range.upperBound, (m + 1) * b) - m * b)
        }
    }

    func bounds(_ k: Int) -> Range<Int> { k * globalRows / ranks..<(k + 1) * globalRows / ranks }
}
