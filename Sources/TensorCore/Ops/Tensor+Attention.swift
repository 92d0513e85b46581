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
/// probabilities head by head instead of storing B·H·T² of them.
extension Tensor {
    public static func causalAttention(q: Tensor, k: Tensor, v: Tensor, segments: IntTensor? = nil,
                                       options: AttentionOptions) -> Tensor {
        precondition(q.rank == 4 && k.rank == 4 && v.rank == 4, "attention: q, k, v must be [B, T, heads, D]")
        let (b, t, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let g = k.shape[2]
        precondition(k.shape == [b, t, g, d] && v.shape == k.shape,
                     "attention: k \(k.shape) / v \(v.shape) do not match q \(q.shape)")
        precondition(g > 0 && h % g == 0, "attention: \(h) query heads not a multiple of \(g) kv heads")
        if let segments { precondition(segments.shape == [b, t], "attention: segments \(segments.shape) must be [\(b), \(t)]") }

        let geometry = AttentionGeometry(batch: b, length: t, heads: h, kvHeads: g, headDim: d,
                                         segments: segments, options: options)
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
                                          dScores: scratch + t * t, capSlope: capped ? scratch + 2 * t * t : nil)
                }
            }
        }
    }
}

/// Sizes, strides and the key range of every query row, shared by forward and backward.
struct AttentionGeometry {
    let b: Int, t: Int, h: Int, g: Int, d: Int
    let options: AttentionOptions
    /// [B, T]: the first key index query i may attend to (segment start, window).
    let firstKey: [Int]

    init(batch: Int, length: Int, heads: Int, kvHeads: Int, headDim: Int, segments: IntTensor?, options: AttentionOptions) {
        (b, t, h, g, d) = (batch, length, heads, kvHeads, headDim)
        self.options = options
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
    /// (each item's products then run on its thread alone); each call gets `scratchCount` T×T buffers.
    func run(items: Int, scratchCount: Int = 1, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let scratchSize = scratchCount * t * t
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

    /// scores[T, T] ← options.scale · Q_h · K_gᵀ, then soft-capped; with `capSlope`, also
    /// d capped / d raw = 1 − tanh² there (backward needs it, and it cannot be recovered from
    /// probabilities that underflowed).
    @inline(__always)
    func scores(batch bi: Int, head hi: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                into s: UnsafeMutablePointer<Float>, capSlope: UnsafeMutablePointer<Float>? = nil) {
        let gi = hi / (h / g)
        gemm(transA: false, transB: true, m: t, n: t, k: d, alpha: options.scale,
             a: q + bi * t * qRow + hi * d, lda: qRow, b: k + bi * t * kvRow + gi * d, ldb: kvRow,
             beta: 0, c: s, ldc: t)
        if let cap = options.softcap {
            for i in 0..<t {
                let row = s + i * t
                for j in firstKey[bi * t + i]...i {
                    let th = Foundation.tanh(row[j] / cap)
                    row[j] = cap * th
                    capSlope?[i * t + j] = 1 - th * th
                }
            }
        }
    }

    func forwardHead(batch bi: Int, head hi: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                     out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, scores s: UnsafeMutablePointer<Float>) {
        scores(batch: bi, head: hi, q: q, k: k, into: s)
        for i in 0..<t {
            let row = s + i * t, lo = firstKey[bi * t + i], n = i - lo + 1
            let m = lk_max_f32(row + lo, n)
            let sum = lk_exp_shift_sum_f32(row + lo, m, row + lo, n)
            lse[(bi * h + hi) * t + i] = m + Foundation.log(sum)
            let inv = 1 / sum
            for j in lo...i { row[j] *= inv }
            if lo > 0 { row.update(repeating: 0, count: lo) }
            if i + 1 < t { (row + i + 1).update(repeating: 0, count: t - i - 1) }
        }
        let gi = hi / (h / g)
        gemm(transA: false, transB: false, m: t, n: d, k: t, a: s, lda: t,
             b: v + bi * t * kvRow + gi * d, ldb: kvRow, beta: 0, c: out + bi * t * qRow + hi * d, ldc: qRow)
    }

    func backwardHead(batch bi: Int, head hi: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                      out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                      dq: UnsafeMutablePointer<Float>?, dk: UnsafeMutablePointer<Float>?, dv: UnsafeMutablePointer<Float>?,
                      scores p: UnsafeMutablePointer<Float>, dScores ds: UnsafeMutablePointer<Float>,
                      capSlope: UnsafeMutablePointer<Float>?) {
        let gi = hi / (h / g)
        let qh = q + bi * t * qRow + hi * d, oh = out + bi * t * qRow + hi * d, doh = dOut + bi * t * qRow + hi * d
        let kg = k + bi * t * kvRow + gi * d, vg = v + bi * t * kvRow + gi * d
        // Recompute probabilities P from the saved log-sum-exp (zero outside each row's key range).
        scores(batch: bi, head: hi, q: q, k: k, into: p, capSlope: capSlope)
        for i in 0..<t {
            let row = p + i * t, lo = firstKey[bi * t + i], l = lse[(bi * h + hi) * t + i]
            for j in lo...i { row[j] = Foundation.exp(row[j] - l) }
            if lo > 0 { row.update(repeating: 0, count: lo) }
            if i + 1 < t { (row + i + 1).update(repeating: 0, count: t - i - 1) }
        }
        if let dv {  // dV_g += Pᵀ · dO_h
            gemm(transA: true, transB: false, m: t, n: d, k: t, a: p, lda: t, b: doh, ldb: qRow,
                 beta: 1, c: dv + bi * t * kvRow + gi * d, ldc: kvRow)
        }
        guard dq != nil || dk != nil else { return }
        // dP = dO_h · V_gᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O))
        gemm(transA: false, transB: true, m: t, n: t, k: d, a: doh, lda: qRow, b: vg, ldb: kvRow, beta: 0, c: ds, ldc: t)
        for i in 0..<t {
            let lo = firstKey[bi * t + i]
            let delta = lk_dot_f32(doh + i * qRow, oh + i * qRow, d)
            let prow = p + i * t, drow = ds + i * t
            for j in lo...i { drow[j] = prow[j] * (drow[j] - delta) }
            if let capSlope { for j in lo...i { drow[j] *= capSlope[i * t + j] } }
            if lo > 0 { drow.update(repeating: 0, count: lo) }
            if i + 1 < t { (drow + i + 1).update(repeating: 0, count: t - i - 1) }
        }
        if let dq {  // dQ_h += scale · dS · K_g
            gemm(transA: false, transB: false, m: t, n: d, k: t, alpha: options.scale, a: ds, lda: t, b: kg, ldb: kvRow,
                 beta: 1, c: dq + bi * t * qRow + hi * d, ldc: qRow)
        }
        if let dk {  // dK_g += scale · dSᵀ · Q_h
            gemm(transA: true, transB: false, m: t, n: d, k: t, alpha: options.scale, a: ds, lda: t, b: qh, ldb: qRow,
                 beta: 1, c: dk + bi * t * kvRow + gi * d, ldc: kvRow)
        }
    }
}
