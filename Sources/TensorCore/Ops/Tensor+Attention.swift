import CKernels
import Foundation

/// Options of causal self-attention that vary between model families.
public struct AttentionOptions: Sendable, Equatable {
    /// Multiplies q·k before the softmax (usually 1/√D).
    public var scale: Float
    /// Sliding window: a query attends to at most this many most recent keys (itself included).
    public var window: Int?
    /// Logit soft-capping (Gemma 2): s ← cap · tanh(s / cap).
    public var softcap: Float?

    public init(scale: Float, window: Int? = nil, softcap: Float? = nil) {
        self.scale = scale
        self.window = window
        self.softcap = softcap
    }
}

/// Fused causal self-attention with grouped key/value heads and packed-sequence segments.
///
/// q [B, T, H, D], k and v [B, T, G, D] with H a multiple of G (query head h reads kv head
/// h / (H/G)). `segments` [B, T] labels each token's sequence; a token attends only to
/// earlier tokens (and itself) in its own contiguous run of equal labels, so sequences
/// packed into one row never see each other. Heads are addressed in place through BLAS
/// leading dimensions, so no transposes are materialised.
///
/// Forward keeps only the log-sum-exp of each score row [B, H, T]; backward recomputes the
/// probabilities block by block (AttentionGeometry) instead of storing B·H·T² of them.
extension Tensor {
    public static func causalAttention(q: Tensor, k: Tensor, v: Tensor, segments: IntTensor? = nil,
                                       options: AttentionOptions) -> Tensor {
        causalAttention(q: q, k: k, v: v, segments: segments, options: options, queryBlock: AttentionGeometry.defaultQueryBlock)
    }

    /// With the query block size chosen (tests use small ones to cross block edges).
    static func causalAttention(q: Tensor, k: Tensor, v: Tensor, segments: IntTensor?, options: AttentionOptions,
                                queryBlock: Int) -> Tensor {
        precondition(q.rank == 4 && k.rank == 4 && v.rank == 4, "attention: q, k, v must be [B, T, heads, D]")
        let (b, t, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let g = k.shape[2]
        precondition(k.shape == [b, t, g, d] && v.shape == k.shape,
                     "attention: k \(k.shape) / v \(v.shape) do not match q \(q.shape)")
        precondition(g > 0 && h % g == 0, "attention: \(h) query heads not a multiple of \(g) kv heads")
        if let segments { precondition(segments.shape == [b, t], "attention: segments \(segments.shape) must be [\(b), \(t)]") }

        let geometry = AttentionGeometry(batch: b, length: t, heads: h, kvHeads: g, headDim: d,
                                         segments: segments, options: options, queryBlock: queryBlock)
        let block = geometry.blockScratch
        let out = TensorStorage(count: q.count)
        let lse = TensorStorage(count: b * h * t)  // [B, H, T]
        let (pq, pk, pv) = (q.storage.base, k.storage.base, v.storage.base)

        geometry.run(items: b * h) { item, scores in
            let (bi, hi) = (item / h, item % h)
            geometry.forwardHead(batch: bi, head: hi, q: pq, k: pk, v: pv, out: out.base, lse: lse.base, scores: scores)
        }

        return record("causal_attention", shape: q.shape, storage: out, inputs: [q, k, v]) { ctx in
            let dq = ctx.gradient(0), dk = ctx.gradient(1), dv = ctx.gradient(2)
            guard dq != nil || dk != nil || dv != nil else { return }
            // One work item per (batch, kv head): its query heads accumulate into the same dK/dV.
            let capped = options.softcap != nil
            geometry.run(items: b * g, scratchCount: capped ? 3 : 2) { item, scratch in
                let (bi, gi) = (item / g, item % g)
                for hi in (gi * (h / g))..<((gi + 1) * (h / g)) {
                    geometry.backwardHead(batch: bi, head: hi, q: pq, k: pk, v: pv, out: ctx.output, lse: lse.base,
                                          dOut: ctx.grad, dq: dq, dk: dk, dv: dv, scores: scratch,
                                          dScores: scratch + block, capSlope: capped ? scratch + 2 * block : nil)
                }
            }
        }
    }
}

/// Sizes, strides and the key range of every query row, shared by forward and backward.
///
/// Each head is processed in blocks of `queryBlock` query rows. A block's rows attend to
/// keys from the first row's first key up to its last row, so the masked part of the causal
/// triangle (and keys before a packed sequence or window) is never multiplied, and scores
/// live in [queryBlock, T] scratch that stays in cache however long the sequence.
struct AttentionGeometry {
    let b: Int, t: Int, h: Int, g: Int, d: Int
    let options: AttentionOptions
    /// [B, T]: the first key index query i may attend to (segment start, window); never
    /// decreasing along a row, so a block's first row has the block's first key.
    let firstKey: [Int]
    let queryBlock: Int

    /// 64 query rows: a [64, T] block of f32 scores is 64 KiB at T = 256, 512 KiB at T = 2048.
    static let defaultQueryBlock = 64

    init(batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int, segments: IntTensor?, options: AttentionOptions,
         queryBlock: Int = AttentionGeometry.defaultQueryBlock) {
        precondition(queryBlock > 0, "attention: query block must be positive")
        (b, t, h, g, d) = (batch, length, heads, kvHeads, headDim)
        self.options = options
        self.queryBlock = queryBlock
        var first = [Int](repeating: 0, count: batch * length)
        for bi in 0..<batch {
            var start = 0
            for i in 0..<length {
                if let segments, i > 0, segments.scalars[bi * length + i] != segments.scalars[bi * length + i - 1] { start = i }
                var lo = start
                if let w = options.window { lo = max(lo, i - w + 1) }
                first[bi * length + i] = lo
            }
        }
        firstKey = first
    }

    var qRow: Int { h * d }   // stride between tokens in q and out
    var kvRow: Int { g * d }  // stride between tokens in k and v

    /// Runs `body(item, scratch)` for every item, in parallel when there are enough items
    /// (each item's products then run on its thread alone); each call gets `scratchCount`
    /// [queryBlock, T] buffers.
    func run(items: Int, scratchCount: Int = 1, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let scratchSize = scratchCount * blockScratch
        if items >= Parallel.threadCount && Parallel.threadCount > 1 {
            Parallel.forChunks(items) { r in
                let scratch = TensorStorage(count: scratchSize)
                for item in r { body(item, scratch.base) }
            }
        } else {
            let scratch = TensorStorage(count: scratchSize)
            for item in 0..<items { body(item, scratch.base) }
        }
    }

    /// Floats in one block's scores.
    var blockScratch: Int { min(queryBlock, t) * t }

    /// The query blocks of batch row `bi`: rows i0..<i1 and their first key.
    func forEachBlock(batch bi: Int, _ body: (_ i0: Int, _ i1: Int, _ lo: Int) -> Void) {
        for i0 in stride(from: 0, to: t, by: queryBlock) {
            body(i0, min(i0 + queryBlock, t), firstKey[bi * t + i0])
        }
    }

    /// s[rows, width] ← options.scale · Q_h[i0..<i1] · K_g[lo..<i1]ᵀ (width = i1 − lo), then
    /// soft-capped; with `capSlope` (same layout), also d capped / d raw = 1 − tanh² there
    /// (backward needs it, and it cannot be recovered from probabilities that underflowed).
    @inline(__always)
    func scores(batch bi: Int, head hi: Int, rows i0: Int, _ i1: Int, keysFrom lo: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                into s: UnsafeMutablePointer<Float>, capSlope: UnsafeMutablePointer<Float>? = nil) {
        let gi = hi / (h / g), width = i1 - lo
        gemm(transA: false, transB: true, m: i1 - i0, n: width, k: d, alpha: options.scale,
             a: q + (bi * t + i0) * qRow + hi * d, lda: qRow, b: k + (bi * t + lo) * kvRow + gi * d, ldb: kvRow,
             beta: 0, c: s, ldc: width)
        if let cap = options.softcap {
            for i in i0..<i1 {
                let row = s + (i - i0) * width
                for j in firstKey[bi * t + i]...i {
                    let th = Foundation.tanh(row[j - lo] / cap)
                    row[j - lo] = cap * th
                    capSlope?[(i - i0) * width + j - lo] = 1 - th * th
                }
            }
        }
    }

    /// Zeroes row entries outside keys first...i (row holds keys lo..<lo + width).
    @inline(__always)
    private func clearOutside(_ row: UnsafeMutablePointer<Float>, first: Int, last i: Int, lo: Int, width: Int) {
        if first > lo { row.update(repeating: 0, count: first - lo) }
        if i + 1 < lo + width { (row + i + 1 - lo).update(repeating: 0, count: lo + width - i - 1) }
    }

    func forwardHead(batch bi: Int, head hi: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                     out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, scores s: UnsafeMutablePointer<Float>) {
        let gi = hi / (h / g)
        forEachBlock(batch: bi) { i0, i1, lo in
            let width = i1 - lo
            scores(batch: bi, head: hi, rows: i0, i1, keysFrom: lo, q: q, k: k, into: s)
            for i in i0..<i1 {
                let first = firstKey[bi * t + i], row = s + (i - i0) * width, n = i - first + 1
                let m = lk_max_f32(row + first - lo, n)
                let sum = lk_exp_shift_sum_f32(row + first - lo, m, row + first - lo, n)
                lse[(bi * h + hi) * t + i] = m + Foundation.log(sum)
                let inv = 1 / sum
                for j in first...i { row[j - lo] *= inv }
                clearOutside(row, first: first, last: i, lo: lo, width: width)
            }
            // out[i0..<i1] = P · V_g[lo..<i1]
            gemm(transA: false, transB: false, m: i1 - i0, n: d, k: width, a: s, lda: width,
                 b: v + (bi * t + lo) * kvRow + gi * d, ldb: kvRow, beta: 0, c: out + (bi * t + i0) * qRow + hi * d, ldc: qRow)
        }
    }

    func backwardHead(batch bi: Int, head hi: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                      out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                      dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?,
                      scores p: UnsafeMutablePointer<Float>, dScores ds: UnsafeMutablePointer<Float>,
                      capSlope: UnsafeMutablePointer<Float>?) {
        let gi = hi / (h / g)
        let qh = q + bi * t * qRow + hi * d, oh = out + bi * t * qRow + hi * d, doh = dOut + bi * t * qRow + hi * d
        let kg = k + bi * t * kvRow + gi * d, vg = v + bi * t * kvRow + gi * d
        forEachBlock(batch: bi) { i0, i1, lo in
            let (rows, width) = (i1 - i0, i1 - lo)
            // Recompute probabilities P from the saved log-sum-exp (zero outside each row's key range).
            scores(batch: bi, head: hi, rows: i0, i1, keysFrom: lo, q: q, k: k, into: p, capSlope: capSlope)
            for i in i0..<i1 {
                let first = firstKey[bi * t + i], row = p + (i - i0) * width, l = lse[(bi * h + hi) * t + i]
                for j in first...i { row[j - lo] = Foundation.exp(row[j - lo] - l) }
                clearOutside(row, first: first, last: i, lo: lo, width: width)
            }
            if let dv {  // dV_g[lo..<i1] += Pᵀ · dO_h[i0..<i1]
                gemm(transA: true, transB: false, m: width, n: d, k: rows, a: p, lda: width, b: doh + i0 * qRow, ldb: qRow,
                     beta: 1, c: dv + (bi * t + lo) * kvRow + gi * d, ldc: kvRow)
            }
            guard dq != nil || dk != nil else { return }
            // dP = dO_h · V_gᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O))
            gemm(transA: false, transB: true, m: rows, n: width, k: d, a: doh + i0 * qRow, lda: qRow, b: vg + lo * kvRow, ldb: kvRow,
                 beta: 0, c: ds, ldc: width)
            for i in i0..<i1 {
                let first = firstKey[bi * t + i]
                let delta = lk_dot_f32(doh + i * qRow, oh + i * qRow, d)
                let prow = p + (i - i0) * width, drow = ds + (i - i0) * width
                for j in first...i { drow[j - lo] = prow[j - lo] * (drow[j - lo] - delta) }
                if let capSlope {
                    let slope = capSlope + (i - i0) * width
                    for j in first...i { drow[j - lo] *= slope[j - lo] }
                }
                clearOutside(drow, first: first, last: i, lo: lo, width: width)
            }
            if let dq {  // dQ_h[i0..<i1] += scale · dS · K_g[lo..<i1]
                gemm(transA: false, transB: false, m: rows, n: d, k: width, alpha: options.scale, a: ds, lda: width, b: kg + lo * kvRow,
                     ldb: kvRow, beta: 1, c: dq + (bi * t + i0) * qRow + hi * d, ldc: qRow)
            }
            if let dk {  // dK_g[lo..<i1] += scale · dSᵀ · Q_h[i0..<i1]
                gemm(transA: true, transB: false, m: width, n: d, k: rows, alpha: options.scale, a: ds, lda: width, b: qh + i0 * qRow,
                     ldb: qRow, beta: 1, c: dk + (bi * t + lo) * kvRow + gi * d, ldc: kvRow)
            }
        }
    }
}
