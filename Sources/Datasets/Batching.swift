import TensorCore

/// How examples become fixed-size [B, T] batches.
public struct BatchingOptions: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Several examples share a row; positions restart and attention stops at each boundary.
        case packed
        /// One example per row, the rest padding (what Hugging Face's padding collator does).
        case padded
    }
    public enum OverLong: String, Sendable, CaseIterable, Codable { case truncate, drop }

    public var batchSize: Int
    public var maxSeqLen: Int
    public var mode: Mode
    public var overLong: OverLong
    /// Id written into padding slots (never a target, never attended to by real tokens).
    public var padID: Int32

    public init(batchSize: Int = 4, maxSeqLen: Int = 256, mode: Mode = .packed, overLong: OverLong = .truncate, padID: Int32 = 0) {
        self.batchSize = batchSize
        self.maxSeqLen = maxSeqLen
        self.mode = mode
        self.overLong = overLong
        self.padID = padID
    }
}

/// A training batch. Targets are already shifted: targets[b·T + t] is the token position t
/// should predict, or −1 where nothing is learnt (prompt, boundaries, padding).
public struct Batch: Sendable {
    public let ids: IntTensor        // [B, T]
    public let positions: IntTensor  // [B, T], restarting at 0 per example
    public let segments: IntTensor   // [B, T], one id per example in a row; −1 for padding
    public let targets: IntTensor    // [B·T]
    public let examples: Int
    /// Tokens of real examples (not padding).
    public let realTokens: Int
    /// Targets the loss counts.
    public let trainedTokens: Int

    /// Lays `rows` (each a list of examples) out as a batch of `options.batchSize` rows.
    public init(rows: [[TokenizedExample]], options: BatchingOptions) {
        let (b, t) = (options.batchSize, options.maxSeqLen)
        precondition(rows.count <= b, "Batch: \(rows.count) rows for a batch of \(b)")
        var ids = [Int32](repeating: options.padID, count: b * t)
        var positions = [Int32](repeating: 0, count: b * t)
        var segments = [Int32](repeating: -1, count: b * t)
        var targets = [Int32](repeating: -1, count: b * t)
        var examples = 0, real = 0
        for (r, row) in rows.enumerated() {
            var p = 0
            for (s, example) in row.enumerated() {
                let n = example.ids.count
                precondition(p + n <= t, "Batch: row \(r) overflows \(t) tokens")
                for j in 0..<n {
                    let slot = r * t + p + j
                    ids[slot] = example.ids[j]
                    positions[slot] = Int32(j)
                    segments[slot] = Int32(s)
                    if j + 1 < n, example.trained[j + 1] { targets[slot] = example.ids[j + 1] }
                }
                p += n
                examples += 1
                real += n
            }
        }
        self.ids = IntTensor(shape: [b, t], scalars: ids)
        self.positions = IntTensor(shape: [b, t], scalars: positions)
        self.segments = IntTensor(shape: [b, t], scalars: segments)
        self.targets = IntTensor(shape: [b * t], scalars: targets)
        self.examples = examples
        realTokens = real
        trainedTokens = targets.lazy.filter { $0 >= 0 }.count
    }
}

extension Batch {
    /// Rows `range` of this batch as a batch of their own ([range.count, T]); a data-parallel
    /// rank computes such a slice of a micro-batch, and its token 0 is token
    /// `range.lowerBound · T` of the whole (dropout masks are drawn from that offset).
    public func rows(_ range: Range<Int>) -> Batch {
        let (b, t) = (ids.shape[0], ids.shape[1])
        precondition(range.lowerBound >= 0 && range.upperBound <= b && !range.isEmpty, "Batch.rows: \(range) of \(b) rows")
        let slots = range.lowerBound * t..<range.upperBound * t
        func slice(_ x: IntTensor, _ shape: [Int]) -> IntTensor { IntTensor(shape: shape, scalars: Array(x.scalars[slots])) }
        let segments = slice(self.segments, [range.count, t])
        // A row's examples are its distinct segment ids 0, 1, …: the last real slot's id + 1.
        var examples = 0
        for r in 0..<range.count {
            let row = segments.scalars[r * t..<(r + 1) * t]
            examples += Int((row.last { $0 >= 0 } ?? -1) + 1)
        }
        return Batch(ids: slice(ids, [range.count, t]), positions: slice(positions, [range.count, t]), segments: segments,
                     targets: slice(targets, [range.count * t]), examples: examples,
                     realTokens: segments.scalars.lazy.filter { $0 >= 0 }.count,
                     trainedTokens: targets.scalars[slots].lazy.filter { $0 >= 0 }.count)
    }

    init(ids: IntTensor, positions: IntTensor, segments: IntTensor, targets: IntTensor, examples: Int, realTokens: Int, trainedTokens: Int) {
        self.ids = ids
        self.positions = positions
        self.segments = segments
        self.targets = targets
        self.examples = examples
        self.realTokens = realTokens
        self.trainedTokens = trainedTokens
    }
}

extension BatchingOptions {
    /// `example` cut to fit a row, or nil when it is dropped (too long under `drop`, or no
    /// trained target left).
    public func fit(_ example: TokenizedExample) -> TokenizedExample? {
        var e = example
        if e.ids.count > maxSeqLen {
            guard overLong == .truncate else { return nil }
            e = TokenizedExample(ids: Array(e.ids.prefix(maxSeqLen)), trained: Array(e.trained.prefix(maxSeqLen)))
        }
        return e.trainedTargets > 0 ? e : nil
    }
}
