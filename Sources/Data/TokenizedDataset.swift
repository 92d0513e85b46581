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
    public init() {}
}

/// A dataset file tokenized and fitted to rows, ready for batching.
public struct TokenizedDataset: Sendable {
    public let path: String
    public let examples: [TokenizedExample]
    public let statistics: DataStatistics

    /// Tokenizes every record of `file` on all cores; the first bad record (by line) is the
    /// error reported.
    public init(file: JSONLFile, encoder: ExampleEncoder, batching: BatchingOptions) throws(DataError) {
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
        stats.records = records.count
        var kept: [TokenizedExample] = []
        kept.reserveCapacity(records.count)
        for (i, result) in results.enumerated() {
            let example: TokenizedExample
            switch result {
            case .success(let e)?: example = e
            case .failure(let error)?: throw .record(path: file.path, line: records[i].line, reason: error.reason)
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

    /// Batches and rows of one pass with every example batched in file order.
    public func passShape(_ options: BatchingOptions) -> (batches: Int, rows: Int) {
        var start = 0, batches = 0, rows = 0
        while start < examples.count {
            let next = options.nextRows(examples, from: start)
            batches += 1
            rows += next.rows.count
            start += next.consumed
        }
        return (batches, rows)
    }

    /// Real tokens over row capacity when every example is batched in file order.
    public func packingEfficiency(_ options: BatchingOptions) -> Double {
        let rows = passShape(options).rows
        return rows == 0 ? 0 : Double(statistics.tokens) / Double(rows * options.maxSeqLen)
    }
}

/// Where the data stream stands: the epoch and the index of the next example in that
/// epoch's order. Saved in checkpoints so a resumed run continues with the very next example.
public struct DataCursor: Sendable, Equatable {
    public var epoch: Int
    public var index: Int
    public init(epoch: Int = 0, index: Int = 0) {
        self.epoch = epoch
        self.index = index
    }
}

/// An endless stream of batches: a seeded shuffle per epoch, batches built in that order.
public struct BatchStream: Sendable {
    public let dataset: TokenizedDataset
    public let options: BatchingOptions
    public let seed: UInt64
    public let shuffle: Bool
    public private(set) var cursor: DataCursor
    private var order: [TokenizedExample]

    public init(dataset: TokenizedDataset, options: BatchingOptions, seed: UInt64, shuffle: Bool = true, cursor: DataCursor = DataCursor()) {
        self.dataset = dataset
        self.options = options
        self.seed = seed
        self.shuffle = shuffle
        self.cursor = cursor
        order = []
        order = epochOrder(cursor.epoch)
    }

    /// The examples of `epoch` in training order (deterministic given the seed).
    public func epochOrder(_ epoch: Int) -> [TokenizedExample] {
        guard shuffle else { return dataset.examples }
        return Self.permutation(count: dataset.examples.count, seed: seed, epoch: epoch).map { dataset.examples[$0] }
    }

    /// Fisher–Yates with the engine's own generator (the standard library's shuffle may change
    /// between releases; a resumed run must see the same order).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = RandomGenerator(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch + 1))
        var p = Array(0..<count)
        var i = count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }

    /// The next batch; an epoch boundary starts the next epoch's order (a batch never mixes epochs).
    public mutating func next() -> Batch {
        if cursor.index >= order.count {
            cursor = DataCursor(epoch: cursor.epoch + 1, index: 0)
            order = epochOrder(cursor.epoch)
        }
        let (rows, consumed) = options.nextRows(order, from: cursor.index)
        cursor.index += consumed
        return Batch(rows: rows, options: options)
    }

    /// Batches of one pass in order, without shuffling or moving the cursor (validation).
    public func allBatches() -> [Batch] {
        var batches: [Batch] = []
        var start = 0
        while start < dataset.examples.count {
            let (rows, consumed) = options.nextRows(dataset.examples, from: start)
            batches.append(Batch(rows: rows, options: options))
            start += consumed
        }
        return batches
    }
}
