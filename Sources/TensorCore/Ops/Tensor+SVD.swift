import CLAPACKE

/// A thin singular value decomposition M = U · diag(S) · Vᵀ, singular values descending.
public struct SingularValueDecomposition {
    public let u: Tensor        // [M, K], K = min(M, N)
    public let values: [Float]  // [K]
    public let vt: Tensor       // [K, N]
}

extension Tensor {
    /// The thin SVD of a matrix [M, N] through LAPACK's divide-and-conquer `sgesdd` (what
    /// `torch.linalg.svd` runs on a CPU); nil when LAPACK reports no convergence. Used once per
    /// layer to initialise PiSSA/LoftQ adapters, never in a training step.
    public func singularValueDecomposition() -> SingularValueDecomposition? {
        precondition(rank == 2, "singularValueDecomposition: needs a matrix, got \(shape)")
        let (m, n) = (shape[0], shape[1])
        let k = Swift.min(m, n)
        let a = TensorStorage(count: count)  // sgesdd overwrites its input
        a.base.update(from: storage.base, count: count)
        let u = TensorStorage(count: m * k), vt = TensorStorage(count: k * n)
        var values = [Float](repeating: 0, count: k)
        let info = values.withUnsafeMutableBufferPointer { s in
            LAPACKE_sgesdd(LAPACK_ROW_MAJOR, CChar(bitPattern: UInt8(ascii: "S")), Int32(m), Int32(n), a.base, Int32(n),
                           s.baseAddress, u.base, Int32(k), vt.base, Int32(n))
        }
        guard info == 0 else { return nil }
        return SingularValueDecomposition(u: Tensor(shape: [m, k], storage: u), values: values, vt: Tensor(shape: [k, n], storage: vt))
    }
}
