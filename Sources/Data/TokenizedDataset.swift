import TensorCore

/// Counts a user should see before training: what was kept, cut and dropped, and how well
/// rows are filled.
public struct DataStatistics: Sendable, Equatable {
    public var records = 0
    /// Examples kept for training.
    public var examples = 0
    public var tokens = 0
    public var trainedTokens = 0
    /// Over-long examples cut to `max_seq_len` (kept) or dropped.
    public var truncated = 0, droppedTooLong = 0
    /// Examples with no trained target left (e.g. the answer fell past the truncation point).
    public var droppedUntrainable = 0
    /// Kept example lengths, before truncation counts: bucket k holds lengths in
    /// [k·width, (k+1)·width).
    public var lengthHistogram: [Int] = []
    public var histogramWidth = 32
    /// Records left out under `data.skip_invalid`, by reason.
    public var skipped = SkippedRecords()
    public init() {}
}

/// Where a dataset's tokens came from (shown to the user: a cache hit skips the slow part).
public enum TokenizationSource: Sendable, Equatable, CustomStringConvertible {
    /// Read from the tokenization cache.
    case cached
    /// Tokenized now; `note` says what became of the cache (nil: no cache in use).
    case tokenized(note: String?)

    public var description: String {
        switch self {
        case .cached: return "cached"
        case .tokenized(nil): return "tokenized"
        case .tokenized(let note?): return "tokenized, \(note)"
        }
    }
}

/// A dataset file tokenized and fitted to rows, ready for batching.
public struct TokenizedDataset: Sendable {
    public let path: String
    public let examples: [TokenizedExample]
    public let statistics: DataStatistics
    public let source: TokenizationSource

    /// Tokenizes every record of `file` on all cores; the first bad record (by line) is the
    /// error reported, or with `skipInvalid` every bad record is counted in the statistics.
    public init(file: JSONLFile, encoder: ExampleEncoder, batching: BatchingOptions, skipInvalid: Bool = false) throws(DataError) {
        try self.init(encoded: try EncodedFile(file: file, encoder: encoder, skipInvalid: skipInvalid), batching: batching)
    }

    /// Fits encoded examples to rows (truncating or dropping over-long ones) and counts them.
    public init(encoded: EncodedFile, batching: BatchingOptions, source: TokenizationSource = .tokenized(note: nil)) throws(DataError) {
        var stats = DataStatistics()
        stats.records = encoded.records
        stats.skipped = encoded.skipped
        var kept: [TokenizedExample] = []
        kept.reserveCapacity(encoded.examples.count)
        for example in encoded.examples {
            let bucket = example.ids.count / stats.histogramWidth
            if example.ids.count > batching.maxSeqLen {
                if batching.overLong == .truncate { stats.truncated += 1 } else { stats.droppedTooLong += 1 }
            }
            guard let fitted = batching.fit(example) else {
                if example.ids.count <= batching.maxSeqLen || batching.overLong == .truncate { stats.droppedUntrainable += 1 }
                continue
            }
            if stats.lengthHistogram.count <= bucket { stats.lengthHistogram += [Int](repeating: 0, count: bucket + 1 - stats.lengthHistogram.count) }
            stats.lengthHistogram[bucket] += 1
            stats.examples += 1
            stats.tokens += fitted.ids.count
            stats.trainedTokens += fitted.trainedTargets
            kept.append(fitted)
        }
        guard !kept.isEmpty else {
            throw .settings("\(encoded.path): none of its \(encoded.examples.count) examples has a trainable token within max_seq_len \(batching.maxSeqLen)")
        }
        path = encoded.path
        examples = kept
        statistics = stats
        self.source = source
    }

    public init(path: String, examples: [TokenizedExample], statistics: DataStatistics, source: TokenizationSource = .tokenized(note: nil)) {
        self.path = path
        self.examples = examples
        self.statistics = statistics
        self.source = source
    }

    /// Token counts of the examples, in dataset order.
    public var lengths: [Int] { examples.map(\.ids.count) }

    /// The packing plan of one epoch: the dataset's own order when `seed` is nil (validation),
    /// else the epoch's seeded shuffle with each window's rows shuffled too.
    public func plan(_ options: BatchingOptions, seed: UInt64? = nil, epoch: Int = 0) -> PackingPlan {
        guard let seed else { return PackingPlan(lengths: lengths, order: Array(examples.indices), options: options) }
        return PackingPlan(lengths: lengths, order: BatchStream.permutation(count: examples.count, seed: seed, epoch: epoch), options: options,
                           rowShuffle: RandomGenerator(seed: seed ^ 0x726f_7773 &+ UInt64(epoch)))
    }

    /// Batches and rows of one pass in dataset order.
    public func passShape(_ options: BatchingOptions) -> (batches: Int, rows: Int) {
        let plan = plan(options)
        return (plan.batchCount, plan.rowCount)
    }

    /// Real tokens over row capacity of the plan training uses (epoch 0 of `seed`), or of the
    /// dataset order when `seed` is nil.
    public func packingEfficiency(_ options: BatchingOptions, seed: UInt64? = nil) -> Double {
        plan(options, seed: seed).efficiency
    }
}
