import TensorCore

/// Where the data stream stands: the epoch and the index of the next batch in that epoch's
/// packing plan. Saved in checkpoints; the plan is rebuilt from the seed, so a resumed run
/// continues with the very next batch.
public struct DataCursor: Sendable, Equatable {
    public var epoch: Int
    /// The next batch of the epoch's `PackingPlan`.
    public var index: Int
    public init(epoch: Int = 0, index: Int = 0) {
        self.epoch = epoch
        self.index = index
    }
}

/// An endless stream of batches: a seeded shuffle per epoch, packed by `PackingPlan`.
public struct BatchStream: Sendable {
    public let dataset: TokenizedDataset
    public let options: BatchingOptions
    public let seed: UInt64
    public let shuffle: Bool
    public private(set) var cursor: DataCursor
    /// The current epoch's plan.
    public private(set) var plan: PackingPlan

    public init(dataset: TokenizedDataset, options: BatchingOptions, seed: UInt64, shuffle: Bool = true, cursor: DataCursor = DataCursor()) {
        self.dataset = dataset
        self.options = options
        self.seed = seed
        self.shuffle = shuffle
        self.cursor = cursor
        plan = dataset.plan(options, seed: shuffle ? seed : nil, epoch: cursor.epoch)
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

    /// The next batch; an epoch boundary starts the next epoch's plan (a batch never mixes epochs).
    public mutating func next() -> Batch {
        if cursor.index >= plan.batchCount {
            cursor = DataCursor(epoch: cursor.epoch + 1, index: 0)
            plan = dataset.plan(options, seed: shuffle ? seed : nil, epoch: cursor.epoch)
        }
        let batch = batch(cursor.index, of: plan)
        cursor.index += 1
        return batch
    }

    /// Batches of one pass in dataset order, without shuffling or moving the cursor (validation).
    public func allBatches() -> [Batch] {
        let plan = dataset.plan(options)
        return (0..<plan.batchCount).map { batch($0, of: plan) }
    }

    func batch(_ b: Int, of plan: PackingPlan) -> Batch {
        Batch(rows: plan.rows(ofBatch: b).map { $0.map { dataset.example($0) } }, options: options)
    }
}
