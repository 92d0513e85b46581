import CBLAS

/// Row-major GEMM through OpenBLAS: C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C.
/// `lda`, `ldb`, `ldc` are the row lengths of the matrices as stored (so a head inside a
/// [T, H, D] tensor is addressed with lda = H·D and no copy).
///
/// OpenBLAS itself runs single-threaded (`Parallel.blasThreads`); a product large enough to
/// share is cut into row (or column) blocks of C that `SpinPool`'s threads claim, one OpenBLAS
/// call each. One pool then owns the cores: OpenBLAS's own workers used to spin in
/// `sched_yield` between products while the pool's did the same between its jobs.
public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                 a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    guard k > 0 else {
        // BLAS leaves C untouched for k = 0 only when beta = 1; make the identity explicit.
        if beta != 1 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        }
        return
    }
    let threads = SpinPool.shared.threads
    // Blocks are whole multiples of 64 rows/columns (the micro-kernels' tiles divide 64), and
    // only products of a few MFLOP are shared: below that the hand-off costs more than it saves.
    let rowBlocks = m >= n ? min(threads, m / 64) : 1
    let columnBlocks = m < n ? min(threads, n / 64) : 1
    let blocks = rowBlocks * columnBlocks
    guard blocks > 1, m * n * k >= 1 << 20 else {
        return sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    SpinPool.shared.run(chunks: blocks) { block in
        if rowBlocks > 1 {
            let lo = (m / 64) * block / blocks * 64, hi = block == blocks - 1 ? m : (m / 64) * (block + 1) / blocks * 64
            sgemm(transA, transB, hi - lo, n, k, alpha, transA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
        } else {
            let lo = (n / 64) * block / blocks * 64, hi = block == blocks - 1 ? n : (n / 64) * (block + 1) / blocks * 64
            sgemm(transA, transB, m, hi - lo, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
        }
    }
}

@inline(__always)
private func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                   _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                   _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Row-major GEMV through OpenBLAS: y[M] = alpha · A[M, N] · x[N] (or Aᵀ · x[M] → y[N] with
/// `trans`), beta = 0, `lda` the stored row length: the one-query case of `gemm` (decoding's
/// attention). `naiveGemm` with a one-column operand is its twin (OpForwardTests).
@inlinable
public func gemv(trans: Bool, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    guard m > 0, n > 0 else {
        y.update(repeating: 0, count: trans ? n : m)
        return
    }
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, 0, y, 1)
}

/// The obviously-right twin of `gemm`, accumulating in Double; tests compare the two.
public func naiveGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(av) * Double(bv)
            }
            let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
            c[i * ldc + j] = Float(Double(alpha) * sum + old)
        }
    }
}

/// y += alpha · x over n floats.
@inlinable
public func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    guard n > 0 else { return }
    cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
}
