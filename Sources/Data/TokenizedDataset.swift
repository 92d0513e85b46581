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

/// A dataset file tokenized and fitted to rows, ready for batching.
public struct TokenizedDataset: Sendable {
    public let path: String
    public let examples: [TokenizedExample]
    public let statistics: DataStatistics

    /// Tokenizes every record of `file` on all cores; the first bad record (by line) is the
    /// error reported, or with `skipInvalid` every bad record is counted in the statistics.
    public init(file: JSONLFile, encoder: ExampleEncoder, batching: BatchingOptions, skipInvalid: Bool = false) throws(DataError) {
        path = file.path
        let records = file.records
        var results = [Result<TokenizedExample, RecordError>?](repeating: nil, count: records.count)
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forChunks(records.count, minChunk: 16) { range in
                for i in range {
                    out[i] = Result { () throws(RecordError) -> TokenizedExample in try encoder.encode(records[i].conversation) }
                }
            }
        }
        var stats = DataStatistics()
        stats.records = records.count + file.skipped.total
        stats.skipped = file.skipped
        var kept: [TokenizedExample] = []
        kept.reserveCapacity(records.count)
        for (i, result) in results.enumerated() {
            let example: TokenizedExample
            switch result {
            case .success(let e)?: example = e
            case .failure(let error)?:
                guard skipInvalid else { throw .record(path: file.path, line: records[i].line, reason: error.reason) }
                stats.skipped.add(error.kind, path: file.path, line: records[i].line, reason: error.reason)
                continue
            case nil: throw .record(path: file.path, line: records[i].line, reason: "not tokenized")
            }
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
            throw .settings("\(file.path): none of its \(records.count) examples has a trainable token within max_seq_len \(batching.maxSeqLen)")
        }
        examples = kept
        statistics = stats
    }

    public init(path: String, examples: [TokenizedExample], statistics: DataStatistics) {
        self.path = path
        self.examples = examples
        self.statistics = statistics
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
