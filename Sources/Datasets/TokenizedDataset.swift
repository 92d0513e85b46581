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
///
/// The examples stay in their storage (for a loaded file, the mapped tokenization cache entry);
/// the dataset keeps only which stored examples it kept and their lengths after fitting, 8
/// bytes per example, and cuts an over-long example to its fitted length when it is read.
public struct TokenizedDataset: Sendable {
    public let path: String
    let storage: ExampleStorage
    /// The kept examples in dataset order: index into `storage`, and length after fitting (≤ max_seq_len).
    let kept: [UInt32]
    let keptLengths: [UInt32]
    public let statistics: DataStatistics
    public let source: TokenizationSource

    /// Tokenizes every record of `file` on all cores; the first bad record (by line) is the
    /// error reported, or with `skipInvalid` every bad record is counted in the statistics.
    public init(file: JSONLFile, encoder: ExampleEncoder, batching: BatchingOptions, skipInvalid: Bool = false) throws(DataError) {
        try self.init(encoded: try EncodedFile(file: file, encoder: encoder, skipInvalid: skipInvalid), batching: batching)
    }

    /// Fits encoded examples to rows (truncating or dropping over-long ones) and counts them.
    public init(encoded: EncodedFile, batching: BatchingOptions, source: TokenizationSource = .tokenized(note: nil)) throws(DataError) {
        try self.init(path: encoded.path, storage: .memory(encoded.examples), records: encoded.records, skipped: encoded.skipped,
                      batching: batching, source: source)
    }

    /// Fits the examples of a tokenized file to rows and counts them; the file stays where it is.
    public init(path: String, file: TokenizedFile, batching: BatchingOptions, source: TokenizationSource) throws(DataError) {
        try self.init(path: path, storage: .mapped(file), records: file.records, skipped: file.skipped, batching: batching, source: source)
    }

    /// One pass over `storage` in order: an over-long example is truncated or dropped, one with
    /// no trained target left is dropped (what `BatchingOptions.fit` does to one example).
    init(path: String, storage: ExampleStorage, records: Int, skipped: SkippedRecords, batching: BatchingOptions, source: TokenizationSource) throws(DataError) {
        precondition(storage.count <= Int(UInt32.max), "TokenizedDataset: more examples than the index holds")
        var stats = DataStatistics()
        stats.records = records
        stats.skipped = skipped
        var kept: [UInt32] = [], keptLengths: [UInt32] = []
        kept.reserveCapacity(storage.count)
        keptLengths.reserveCapacity(storage.count)
        // Pages behind the pass are released every ~1 MiB of tokens, each release overlapping
        // the one before (see `TokenizedFile.releasePages(ofExamples:)`).
        var previousFrom = 0, passedFrom = 0, passedTokens = 0
        for i in 0..<storage.count {
            if passedTokens >= 1 << 18 {
                storage.passed(previousFrom..<i)
                (previousFrom, passedFrom, passedTokens) = (passedFrom, i, 0)
            }
            let length = storage.length(i)
            passedTokens += length
            let bucket = length / stats.histogramWidth
            if length > batching.maxSeqLen {
                if batching.overLong == .truncate { stats.truncated += 1 } else { stats.droppedTooLong += 1 }
            }
            let fitted = min(length, batching.maxSeqLen)
            let targets = length > batching.maxSeqLen && batching.overLong == .drop ? 0 : storage.trainedTargets(i, prefix: fitted)
            guard targets > 0 else {
                if length <= batching.maxSeqLen || batching.overLong == .truncate { stats.droppedUntrainable += 1 }
                continue
            }
            if stats.lengthHistogram.count <= bucket { stats.lengthHistogram += [Int](repeating: 0, count: bucket + 1 - stats.lengthHistogram.count) }
            stats.lengthHistogram[bucket] += 1
            stats.examples += 1
            stats.tokens += fitted
            stats.trainedTokens += targets
            kept.append(UInt32(i))
            keptLengths.append(UInt32(fitted))
        }
        storage.passed(previousFrom..<storage.count)
        guard !kept.isEmpty else {
            throw .settings("\(path): none of its \(storage.count) examples has a trainable token within max_seq_len \(batching.maxSeqLen)")
        }
        self.init(path: path, storage: storage, kept: kept, keptLengths: keptLengths, statistics: stats, source: source)
    }

    /// Examples used as they are (already fitted by the caller).
    public init(path: String, examples: [TokenizedExample], statistics: DataStatistics, source: TokenizationSource = .tokenized(note: nil)) {
        precondition(examples.count <= Int(UInt32.max), "TokenizedDataset: more examples than the index holds")
        self.init(path: path, storage: .memory(examples), kept: examples.indices.map { UInt32($0) },
                  keptLengths: examples.map { UInt32(clamping: $0.ids.count) }, statistics: statistics, source: source)
    }

    init(path: String, storage: ExampleStorage, kept: [UInt32], keptLengths: [UInt32], statistics: DataStatistics, source: TokenizationSource) {
        self.path = path
        self.storage = storage
        self.kept = kept
        self.keptLengths = keptLengths
        self.statistics = statistics
        self.source = source
    }

    /// Examples kept.
    public var count: Int { kept.count }

    /// Kept example `i`, fitted to a row (read from the storage; over-long ones cut).
    public func example(_ i: Int) -> TokenizedExample { storage.example(Int(kept[i]), prefix: Int(keptLengths[i])) }

    /// The kept examples as a collection, each read when accessed.
    public var examples: Examples { Examples(dataset: self) }

    /// The examples at `indices` (into this dataset), as a dataset over the same storage.
    public func selecting(_ indices: [Int], path: String, statistics: DataStatistics) -> TokenizedDataset {
        TokenizedDataset(path: path, storage: storage, kept: indices.map { kept[$0] }, keptLengths: indices.map { keptLengths[$0] },
                         statistics: statistics, source: source)
    }

    /// Token counts of the examples, in dataset order.
    public var lengths: [Int] { keptLengths.map { Int($0) } }

    /// Token count of kept example `i` (after fitting).
    public func length(_ i: Int) -> Int { Int(keptLengths[i]) }

    public struct Examples: RandomAccessCollection, Equatable, Sendable {
        let dataset: TokenizedDataset
        public var startIndex: Int { 0 }
        public var endIndex: Int { dataset.count }
        public subscript(i: Int) -> TokenizedExample { dataset.example(i) }
        public static func == (a: Examples, b: Examples) -> Bool { a.elementsEqual(b) }
    }

    /// The packing plan of one epoch: the dataset's own order when `seed` is nil (validation),
    /// else the epoch's seeded shuffle with each window's rows shuffled too.
    public func plan(_ options: BatchingOptions, seed: UInt64? = nil, epoch: Int = 0) -> PackingPlan {
        guard let seed else { return PackingPlan(lengths: lengths, order: Array(0..<count), options: options) }
        return PackingPlan(lengths: lengths, order: BatchStream.permutation(count: count, seed: seed, epoch: epoch), options: options,
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
