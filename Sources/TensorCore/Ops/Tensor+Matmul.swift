/// Matrix products, forward and backward side by side.
///
/// `matmul(a, b)` multiplies the last two dimensions: a [..., M, K] · b [..., K, N] →
/// [..., M, N], with `transposeA`/`transposeB` reading a as [..., K, M] / b as [..., N, K]
/// without a copy. Leading (batch) dimensions must match, or b may be rank 2 and shared
/// across the batch (a linear layer: then the batch folds into one large GEMM).
extension Tensor {
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands need rank ≥ 2, got \(a.shape) and \(b.shape)")
        let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
        let (m, k) = transposeA ? (aCols, aRows) : (aRows, aCols)
        let (kb, n) = transposeB ? (bCols, bRows) : (bRows, bCols)
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchShape = Array(a.shape.dropLast(2))
        let sharedB = b.rank == 2
        precondition(sharedB || Array(b.shape.dropLast(2)) == batchShape,
                     "matmul: batch dimensions differ: \(a.shape) · \(b.shape)")
        let batch = Tensor.elementCount(batchShape)
        let out = TensorStorage(count: batch * m * n)
        let (aStride, bStride, cStride) = (aRows * aCols, sharedB ? 0 : bRows * bCols, m * n)

        if sharedB && !transposeA {
            // [batch·M, K] · op(B): one GEMM over the folded batch.
            gemm(transA: false, transB: transposeB, m: batch * m, n: n, k: k,
                 a: a.storage.base, lda: aCols, b: b.storage.base, ldb: bCols, beta: 0, c: out.base, ldc: n)
        } else {
            for i in 0..<batch {
                gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                     a: a.storage.base + i * aStride, lda: aCols, b: b.storage.base + i * bStride, ldb: bCols,
                     beta: 0, c: out.base + i * cStride, ldc: n)
            }
        }

        return Tensor.record("matmul", shape: batchShape + [m, n], storage: out, inputs: [a, b]) { ctx in
            // C = op(A)·op(B):  d op(A) = dC·op(B)ᵀ,  d op(B) = op(A)ᵀ·dC.
            if let da = ctx.gradient(0) {
                for i in 0..<batch {
                    let dC = ctx.grad + i * cStride, bp = b.storage.base + i * bStride
                    if transposeA {  // dA[K, M] += op(B)·dCᵀ
                        gemm(transA: transposeB, transB: true, m: k, n: m, k: n,
                             a: bp, lda: bCols, b: dC, ldb: n, beta: 1, c: da + i * aStride, ldc: aCols)
                    } else {         // dA[M, K] += dC·op(B)ᵀ
                        gemm(transA: false, transB: !transposeB, m: m, n: k, k: n,
                             a: dC, lda: n, b: bp, ldb: bCols, beta: 1, c: da + i * aStride, ldc: aCols)
                    }
                }
            }
            if let db = ctx.gradient(1) {
                if sharedB && !transposeA {
                    // Sum over the folded batch in one GEMM.
                    gemmWeightGrad(transB: transposeB, rows: batch * m, n: n, k: k,
                                   a: a.storage.base, aCols: aCols, dC: ctx.grad, db: db, bCols: bCols)
                } else {
                    for i in 0..<batch {
                        let dC = ctx.grad + i * cStride, ap = a.storage.base + i * aStride
                        let dbi = db + i * bStride
                        if transposeB {  // dB[N, K] += dCᵀ·op(A)
                            gemm(transA: true, transB: transposeA, m: n, n: k, k: m,
                                 a: dC, lda: n, b: ap, ldb: aCols, beta: 1, c: dbi, ldc: bCols)
                        } else {         // dB[K, N] += op(A)ᵀ·dC
                            gemm(transA: !transposeA, transB: false, m: k, n: n, k: m,
                                 a: ap, lda: aCols, b: dC, ldb: n, beta: 1, c: dbi, ldc: bCols)
                        }
                    }
                }
            }
        }
    }
}

/// dB for a linear layer whose batch was folded into `rows`: A [rows, K], dC [rows, N].
@inline(__always)
private func gemmWeightGrad(transB: Bool, rows: Int, n: Int, k: Int, a: UnsafePointer<Float>, aCols: Int,
                            dC: UnsafePointer<Float>, db: UnsafeMutablePointer<Float>, bCols: Int) {
    if transB {  // B [N, K]: dB += dCᵀ·A
        gemm(transA: true, transB: false, m: n, n: k, k: rows, a: dC, lda: n, b: a, ldb: aCols,
             beta: 1, c: db, ldc: bCols)
    } else {     // B [K, N]: dB += Aᵀ·dC
        gemm(transA: true, transB: false, m: k, n: n, k: rows, a: a, lda: aCols, b: dC, ldb: n,
             beta: 1, c: db, ldc: bCols)
    }
}
