/// The frozen half of a `linearGroup`: y = x·Wᵀ + bias and dx += dy·W, where W [ΣO, I] is
/// the members' weights stacked in member order.
///
/// W is read in place (stored f32), decoded a panel at a time into one scratch buffer (peak
/// extra memory one panel, however large the group), or decoded whole once and kept for the
/// backward (`keepDecoded`, within `LinearGroup.keptWeightBytes`), which then forms dx in one
/// GEMM over all members' rows.
struct FrozenGroupProducts {
    let bases: [any FrozenLinear]
    /// Member k's first column of y; the last entry is ΣO.
    let offsets: [Int]
    /// I.
    let inputs: Int
    /// Every member's W decoded into one [ΣO, I] buffer (kept for the backward), or nil.
    let decoded: TensorStorage?

    var outputs: Int { offsets[bases.count] }

    init(bases: [any FrozenLinear], keepDecoded: Bool) {
        self.bases = bases
        var offsets = [0]
        for base in bases { offsets.append(offsets[offsets.count - 1] + base.outputFeatures) }
        self.offsets = offsets
        let i = bases.first?.inputFeatures ?? 0
        inputs = i
        let total = offsets[bases.count]
        guard keepDecoded, bases.contains(where: { $0.storedWeight == nil }),
              total * i * MemoryLayout<Float>.stride <= LinearGroup.keptWeightBytes else {
            decoded = nil
            return
        }
        let w = TensorStorage(count: total * i)  // [ΣO, I]
        for (k, base) in bases.enumerated() { base.decodeWeightRows(0..<base.outputFeatures, into: w.base + offsets[k] * i) }
        decoded = w
    }

    /// y [N, ΣO] = x [N, I]·Wᵀ + bias (y overwritten). One row is each member's matvec in
    /// f32, which reads encoded weights directly (generation).
    func forward(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, compute: ComputeDType) {
        let (i, o) = (inputs, outputs)
        // Kept weights are read in the same panels as decoded ones: the recomputation of a
        // checkpointed block then gives its first run's bits (BLAS blocking depends on shape).
        if n == 1 {
            for (k, base) in bases.enumerated() { base.weightMatvec(x, into: y + offsets[k]) }
        } else if compute == .bf16 {
            BF16GEMM.withShared { product in
                product.packA(m: n, k: i, a: x, lda: i)  // x packed once for every member's panels
                forEachPanel { k, r0, rn, w in
                    // y[:, columns of rows r0..<r0+rn] = x · panelᵀ
                    product.multiply(packedA: n, n: rn, transB: true, b: w, ldb: i, beta: 0, c: y + offsets[k] + r0, ldc: o)
                }
            }
        } else {
            forEachPanel { k, r0, rn, w in
                gemm(transA: false, transB: true, m: n, n: rn, k: i, a: x, lda: i, b: w, ldb: i, beta: 0, c: y + offsets[k] + r0, ldc: o)
            }
        }
        addBias(to: y, rows: n)
    }

    /// dx [N, I] += dy [N, ΣO]·W.
    func inputGradient(_ dy: UnsafePointer<Float>, rows n: Int, accumulatingInto dx: UnsafeMutablePointer<Float>, compute: ComputeDType) {
        let (i, o) = (inputs, outputs)
        if let decoded {
            gemm(compute: compute, transB: false, m: n, n: i, k: o, a: dy, lda: o, b: decoded.base, ldb: i, beta: 1, c: dx, ldc: i)
            return
        }
        forEachPanel { k, r0, rn, w in
            // dx += dy[:, columns of rows r0..<r0+rn] · panel
            gemm(compute: compute, transB: false, m: n, n: i, k: rn, a: dy + offsets[k] + r0, lda: o, b: w, ldb: i, beta: 1, c: dx, ldc: i)
        }
    }

    /// body(member, first row, row count, those rows [count, I]) over every member's W in
    /// order: a stored weight whole, an encoded one `panelRows` rows at a time, decoded into
    /// scratch or read from the kept decoded weights.
    private func forEachPanel(_ body: (Int, Int, Int, UnsafePointer<Float>) -> Void) {
        let panel = decoded != nil ? 0 : bases.lazy.filter { $0.storedWeight == nil }.map { min($0.panelRows, $0.outputFeatures) }.max() ?? 0
        let scratch = TensorStorage(count: panel * inputs)  // [panel, I]
        for (k, base) in bases.enumerated() {
            if let w = base.storedWeight {
                body(k, 0, base.outputFeatures, w)
                continue
            }
            for r0 in stride(from: 0, to: base.outputFeatures, by: base.panelRows) {
                let rn = min(base.panelRows, base.outputFeatures - r0)
                if let decoded {
                    body(k, r0, rn, decoded.base + (offsets[k] + r0) * inputs)
                } else {
                    base.decodeWeightRows(r0..<(r0 + rn), into: scratch.base)
                    body(k, r0, rn, scratch.base)
                }
            }
        }
    }

    private func addBias(to y: UnsafeMutablePointer<Float>, rows n: Int) {
        let o = outputs
        for (k, base) in bases.enumerated() {
            guard let bias = base.bias else { continue }
            let (b, width) = (bias.storage.base, base.outputFeatures)
            for row in 0..<n {
                let yr = y + row * o + offsets[k]
                for j in 0..<width { yr[j] += b[j] }
            }
        }
    }
}
