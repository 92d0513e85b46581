import CKernels
import Foundation

/// Keys and values of every position seen so far, per layer, for generation: each new token
/// attends over the stored ones instead of recomputing the whole prefix (inference only).
public final class KVCache {
    public private(set) var capacity: Int
    let kvHeads: Int, headDim: Int
    /// Positions stored and visible to the next forward.
    public private(set) var length = 0
    private var keys: [TensorStorage]    // per layer [capacity, G, D], after rotary
    private var values: [TensorStorage]  // per layer [capacity, G, D]

    public init(layers: Int, capacity: Int, kvHeads: Int, headDim: Int) {
        precondition(layers > 0 && capacity > 0 && kvHeads > 0 && headDim > 0, "KVCache: sizes must be positive")
        self.capacity = capacity
        self.kvHeads = kvHeads
        self.headDim = headDim
        keys = (0..<layers).map { _ in TensorStorage(count: capacity * kvHeads * headDim) }
        values = (0..<layers).map { _ in TensorStorage(count: capacity * kvHeads * headDim) }
    }

    /// Grows the storage to hold at least `positions` (copying what is cached), so a chat can
    /// start small and extend turn by turn.
    public func reserve(_ positions: Int) {
        guard positions > capacity else { return }
        let row = kvHeads * headDim
        func grown(_ old: TensorStorage) -> TensorStorage {
            let new = TensorStorage(count: positions * row)
            new.base.update(from: old.base, count: length * row)
            return new
        }
        keys = keys.map(grown)
        values = values.map(grown)
        capacity = positions
    }

    /// Room left for new positions.
    public var remaining: Int { capacity - length }

    /// Forgets positions from `newLength` on (a chat that rewrites its last turn, a reset).
    public func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "KVCache: cannot truncate \(length) positions to \(newLength)")
        length = newLength
    }

    /// Makes the positions written by the last forward visible (after every layer stored them).
    public func commit(_ count: Int) {
        precondition(length + count <= capacity, "KVCache: \(length) + \(count) positions exceed the capacity \(capacity)")
        length += count
    }

    /// Stores new keys and values k, v [1, Tn, G, D] of layer `layer` after the committed
    /// positions, then attends q [1, Tn, H, D] over all of them (causal, windowed, capped as
    /// `options` says); returns [1, Tn, H, D]. Records nothing: generation needs no gradient.
    public func attend(layer: Int, q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions) -> Tensor {
        let (tn, h, d, g) = (q.shape[1], q.shape[2], headDim, kvHeads)
        precondition(q.shape[0] == 1 && k.shape == [1, tn, g, d] && v.shape == k.shape && q.shape[3] == d,
                     "KVCache.attend: q \(q.shape), k \(k.shape), v \(v.shape) do not fit a cache of \(g)×\(d)")
        precondition(length + tn <= capacity, "KVCache: \(length) + \(tn) positions exceed the capacity \(capacity)")
        let (past, total, kvRow, qRow) = (length, length + tn, g * d, h * d)
        (keys[layer].base + past * kvRow).update(from: k.storage.base, count: tn * kvRow)
        (values[layer].base + past * kvRow).update(from: v.storage.base, count: tn * kvRow)
        let (pk, pv, pq) = (UnsafePointer(keys[layer].base), UnsafePointer(values[layer].base), UnsafePointer(q.storage.base))
        let out = TensorStorage(count: q.count)
        if tn == 1 {
            attendOne(q: pq, keys: pk, values: pv, total: total, heads: h, options: options, into: out.base)
            return Tensor(shape: q.shape, storage: out)
        }

        // One head at a time: scores [Tn, total] = scale · Q_h · K_gᵀ, masked, softmax, · V_g.
        func head(_ hi: Int, _ s: UnsafeMutablePointer<Float>) {
            let gi = hi / (h / g)
            gemm(transA: false, transB: true, m: tn, n: total, k: d, alpha: options.scale, a: pq + hi * d, lda: qRow,
                 b: pk + gi * d, ldb: kvRow, beta: 0, c: s, ldc: total)
            for i in 0..<tn {
                let row = s + i * total, position = past + i
                let lo = options.window.map { max(0, position - $0 + 1) } ?? 0, n = position - lo + 1
                if let cap = options.softcap { for j in lo...position { row[j] = cap * Foundation.tanh(row[j] / cap) } }
                let m = lk_max_f32(row + lo, n)
                let inv = 1 / lk_exp_shift_sum_f32(row + lo, m, row + lo, n)
                for j in lo...position { row[j] *= inv }
                if lo > 0 { row.update(repeating: 0, count: lo) }
                if position + 1 < total { (row + position + 1).update(repeating: 0, count: total - position - 1) }
            }
            gemm(transA: false, transB: false, m: tn, n: d, k: total, a: s, lda: total, b: pv + gi * d, ldb: kvRow,
                 beta: 0, c: out.base + hi * d, ldc: qRow)
        }
        if h >= Parallel.threadCount && Parallel.threadCount > 1 {
            Parallel.forChunks(h) { range in
                let scratch = TensorStorage(count: tn * total)
                for hi in range { head(hi, scratch.base) }
            }
        } else {
            let scratch = TensorStorage(count: tn * total)
            for hi in 0..<h { head(hi, scratch.base) }
        }
        return Tensor(shape: q.shape, storage: out)
    }

    /// One new position (decoding): per head, scores [total] = scale · K_g·q_h and out_h = V_gᵀ·p
    /// as two GEMVs, heads spread over the spinning pool (a few µs each; Dispatch's fork and
    /// join cost more than the head). Same masking and softmax as the general path above, which
    /// KVCacheParityTests compares it with through a full forward.
    private func attendOne(q: UnsafePointer<Float>, keys pk: UnsafePointer<Float>, values pv: UnsafePointer<Float>,
                           total: Int, heads h: Int, options: AttentionOptions, into out: UnsafeMutablePointer<Float>) {
        let (d, g) = (headDim, kvHeads), kvRow = g * d, position = total - 1
        let lo = options.window.map { max(0, position - $0 + 1) } ?? 0, n = position - lo + 1
        let scratch = TensorStorage(count: h * n)  // [H, n] scores, then probabilities
        SpinPool.shared.run(chunks: h) { hi in
            let gi = hi / (h / g), s = scratch.base + hi * n
            gemv(trans: false, m: n, n: d, alpha: options.scale, a: pk + lo * kvRow + gi * d, lda: kvRow, x: q + hi * d, y: s)
            if let cap = options.softcap { for j in 0..<n { s[j] = cap * Foundation.tanh(s[j] / cap) } }
            let m = lk_max_f32(s, n)
            let inv = 1 / lk_exp_shift_sum_f32(s, m, s, n)
            for j in 0..<n { s[j] *= inv }
            gemv(trans: true, m: n, n: d, a: pv + lo * kvRow + gi * d, lda: kvRow, x: s, y: out + hi * d)
        }
    }
}
