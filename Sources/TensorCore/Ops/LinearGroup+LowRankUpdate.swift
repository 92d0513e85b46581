/// The adapters of a `linearGroup`: y_k += scale_k·xd_k·A_kᵀ·B_kᵀ, and their backward.
///
/// u [N, R] holds every adapter's xd_k·A_kᵀ side by side (R = Σr_k), kept for backward;
/// xd_k is x through adapter k's dropout mask, or x itself. When no adapter drops, all read
/// x, and the A's act as one stacked [R, I] matrix: u, dA and the adapters' share of dx are
/// one GEMM each over x, and x is read by the first two only once for the whole group.
///
/// Legend: N rows, I input features, ΣO the group's outputs (y's row length); adapter k is
/// input 1 + 2k (A) and 2 + 2k (B) of the op.
struct LowRankGroupUpdate {
    let updates: [LowRankUpdate]
    /// Adapter k's first column in y and in u.
    let columns: [Int], rankOffsets: [Int]
    let (rows, inputs, outputs, rank): (Int, Int, Int, Int)
    /// u [N, R].
    let u: TensorStorage
    /// The A's stacked [R, I] when no adapter drops (a lone adapter's A itself), else nil.
    let stackedA: TensorStorage?
    /// Adapter k's dropped input [N, I], nil where it reads x.
    let dropped: [TensorStorage?]

    /// Runs the forward half: adds every update into y [N, ΣO].
    init(_ updates: [LowRankUpdate], columns: [Int], rows n: Int, outputs o: Int, x: TensorStorage, y: UnsafeMutablePointer<Float>) {
        let i = updates[0].a.shape[1]
        var rankOffsets = [0]
        for update in updates { rankOffsets.append(rankOffsets[rankOffsets.count - 1] + update.a.shape[0]) }
        let r = rankOffsets[updates.count]
        (self.updates, self.columns, self.rankOffsets) = (updates, columns, rankOffsets)
        (rows, inputs, outputs, rank) = (n, i, o, r)
        u = TensorStorage(count: n * r)
        if updates.allSatisfy({ $0.mask == nil }) {
            let stacked = updates.count == 1 ? updates[0].a.storage : TensorStorage(count: r * i)
            if updates.count > 1 {
                for (k, update) in updates.enumerated() {
                    (stacked.base + rankOffsets[k] * i).update(from: update.a.storage.base, count: update.a.count)
                }
            }
            // u = x·Aᵀ for all adapters at once
            gemm(transA: false, transB: true, m: n, n: r, k: i, a: x.base, lda: i, b: stacked.base, ldb: i, beta: 0, c: u.base, ldc: r)
            stackedA = stacked
            dropped = Array(repeating: nil, count: updates.count)
        } else {
            stackedA = nil
            dropped = updates.map { update in
                update.mask.map { mask in
                    let xd = TensorStorage(count: n * i)  // [N, I]
                    mask.apply(x.base, into: xd.base, count: n * i)
                    return xd
                }
            }
            for (k, update) in updates.enumerated() {  // u_k = xd_k·A_kᵀ
                let xd = dropped[k]?.base ?? x.base
                gemm(transA: false, transB: true, m: n, n: update.a.shape[0], k: i, a: xd, lda: i, b: update.a.storage.base, ldb: i,
                     beta: 0, c: u.base + rankOffsets[k], ldc: r)
            }
        }
        for (k, update) in updates.enumerated() {  // y_k += scale_k·u_k·B_kᵀ
            let (ok, rk) = (update.b.shape[0], update.b.shape[1])
            gemm(transA: false, transB: true, m: n, n: ok, k: rk, alpha: update.scale, a: u.base + rankOffsets[k], lda: r,
                 b: update.b.storage.base, ldb: rk, beta: 1, c: y + columns[k], ldc: o)
        }
    }

    /// dB, dA and the adapters' share of dx (x: the op's input), only those some input needs.
    func backward(_ ctx: BackwardContext, x: UnsafePointer<Float>) {
        let (n, i, o, r) = (rows, inputs, outputs, rank)
        let dy = ctx.grad  // [N, ΣO]
        for (k, update) in updates.enumerated() {  // dB_k [O_k, r_k] += scale_k·dy_kᵀ·u_k
            guard let db = ctx.gradient(2 + 2 * k) else { continue }
            let (ok, rk) = (update.b.shape[0], update.b.shape[1])
            gemm(transA: true, transB: false, m: ok, n: rk, k: n, alpha: update.scale, a: dy + columns[k], lda: o,
                 b: u.base + rankOffsets[k], ldb: r, beta: 1, c: db, ldc: rk)
        }
        let dx = ctx.gradient(0)
        let da = updates.indices.map { ctx.gradient(1 + 2 * $0) }
        guard dx != nil || da.contains(where: { $0 != nil }) else { return }

        let g = TensorStorage(count: n * r)  // [N, R], g_k = scale_k·dy_k·B_k
        for (k, update) in updates.enumerated() {
            let (ok, rk) = (update.b.shape[0], update.b.shape[1])
            gemm(transA: false, transB: false, m: n, n: rk, k: ok, alpha: update.scale, a: dy + columns[k], lda: o,
                 b: update.b.storage.base, ldb: rk, beta: 0, c: g.base + rankOffsets[k], ldc: r)
        }
        if let stackedA {
            if updates.count == 1, let da0 = da[0] {  // dA += gᵀ·x
                gemm(transA: true, transB: false, m: r, n: i, k: n, a: g.base, lda: r, b: x, ldb: i, beta: 1, c: da0, ldc: i)
            } else if da.contains(where: { $0 != nil }) {  // all dA_k at once, then each to its buffer
                let all = TensorStorage(count: r * i)  // [R, I]
                gemm(transA: true, transB: false, m: r, n: i, k: n, a: g.base, lda: r, b: x, ldb: i, beta: 0, c: all.base, ldc: i)
                for (k, update) in updates.enumerated() {
                    if let dak = da[k] { axpy(update.a.count, 1, all.base + rankOffsets[k] * i, dak) }
                }
            }
            if let dx {  // dx += g·A (stacked)
                gemm(transA: false, transB: false, m: n, n: i, k: r, a: g.base, lda: r, b: stackedA.base, ldb: i, beta: 1, c: dx, ldc: i)
            }
            return
        }
        var ga: TensorStorage?  // [N, I] g_k·A_k before a mask, shared by the masked adapters
        for (k, update) in updates.enumerated() {
            let (rk, gk, ak) = (update.a.shape[0], g.base + rankOffsets[k], update.a.storage.base)
            if let dak = da[k] {  // dA_k += g_kᵀ·xd_k
                gemm(transA: true, transB: false, m: rk, n: i, k: n, a: gk, lda: r, b: dropped[k].map { UnsafePointer($0.base) } ?? x, ldb: i,
                     beta: 1, c: dak, ldc: i)
            }
            guard let dx else { continue }
            if let mask = update.mask {  // dx += (g_k·A_k) ⊙ mask_k
                let scratch = ga ?? TensorStorage(count: n * i)
                ga = scratch
                gemm(transA: false, transB: false, m: n, n: i, k: rk, a: gk, lda: r, b: ak, ldb: i, beta: 0, c: scratch.base, ldc: i)
                mask.accumulateGradient(scratch.base, into: dx, count: n * i)
            } else {     // dx += g_k·A_k
                gemm(transA: false, transB: false, m: n, n: i, k: rk, a: gk, lda: r, b: ak, ldb: i, beta: 1, c: dx, ldc: i)
            }
        }
    }
}
