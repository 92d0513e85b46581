import TensorCore

/// y = x·Wᵀ over a frozen quantized W [O, I]: forward and backward decode W panel by panel.
///
/// The weight has no gradient slot at all (QLoRA's base is frozen by construction): backward
/// sends dy·W to the input only, and only when the input needs it. Peak extra memory is one
/// panel of `panelRows` decoded rows, however large the matrix.
///
/// Under `ComputeDType.current == .bf16` (read once per forward; its backward follows the
/// forward's choice) both products run in `BF16GEMM`: x and each decoded panel rounded to bf16,
/// f32 accumulation, f32 results. A one-row forward is the f32 matvec whatever the dtype.
///
/// Both products are `FrozenLinear`'s raw products, so a LoRA layer over this base records one
/// op for base and adapter together.
public final class QuantizedLinear: LinearLayer {
    public let weight: any QuantizedMatrix
    public let bias: Tensor?  // [O], frozen
    /// Rows decoded per GEMM: large enough for BLAS efficiency, small enough to stay in cache
    /// (256 rows × 576 columns is 576 KiB).
    public let panelRows: Int

    public init(weight: any QuantizedMatrix, bias: Tensor? = nil, panelRows: Int = 256) {
        precondition(panelRows > 0, "QuantizedLinear: panelRows must be positive")
        if let bias { precondition(bias.shape == [weight.rows], "QuantizedLinear: bias \(bias.shape) does not match \(weight.rows) rows") }
        self.weight = weight
        self.bias = bias
        self.panelRows = panelRows
    }

    public var inputFeatures: Int { weight.columns }
    public var outputFeatures: Int { weight.rows }

    public func forward(_ x: Tensor) -> Tensor {  // x [..., I] → [..., O]
        let (o, i) = (weight.rows, weight.columns)
        precondition(x.shape.last == i, "QuantizedLinear: input \(x.shape) does not end in \(i) features")
        let n = x.count / max(i, 1)
        let compute = ComputeDType.current
        let out = TensorStorage(count: n * o)  // [N, O]
        frozenProduct(x.storage.base, rows: n, into: out.base, compute: compute)
        return Tensor.record("quantized_linear", shape: Array(x.shape.dropLast()) + [o], storage: out, inputs: [x]) { [self] ctx in
            guard let dx = ctx.gradient(0) else { return }
            frozenInputGradient(ctx.grad, rows: n, accumulatingInto: dx, compute: compute)
        }
    }
}

extension QuantizedLinear: FrozenLinear {
    /// One row (a token while generating) takes the fused row-by-row matvec in f32, which reads
    /// the encoded weight once and decodes no panel; more rows decode W panel by panel.
    public func frozenProduct(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, compute: ComputeDType) {
        let (o, i) = (weight.rows, weight.columns)
        if n == 1 {
            weight.matvec(x, into: y)
            if let bias { for j in 0..<o { y[j] += bias.storage.base[j] } }
            return
        }
        let panel = TensorStorage(count: min(panelRows, o) * i)  // [panelRows, I]
        if compute == .bf16 {
            BF16GEMM.withShared { product in
                product.packA(m: n, k: i, a: x, lda: i)  // x packed once for every panel
                for r0 in stride(from: 0, to: o, by: panelRows) {
                    let rn = min(panelRows, o - r0)
                    weight.decodeRows(r0..<(r0 + rn), into: panel.base)
                    // y[:, r0..<r0+rn] = x · panelᵀ
                    product.multiply(packedA: n, n: rn, transB: true, b: panel.base, ldb: i, beta: 0, c: y + r0, ldc: o)
                }
            }
        } else {
            for r0 in stride(from: 0, to: o, by: panelRows) {
                let rn = min(panelRows, o - r0)
                weight.decodeRows(r0..<(r0 + rn), into: panel.base)
                // y[:, r0..<r0+rn] = x · panelᵀ
                gemm(transA: false, transB: true, m: n, n: rn, k: i, a: x, lda: i,
                     b: panel.base, ldb: i, beta: 0, c: y + r0, ldc: o)
            }
        }
        if let bias {
            for row in 0..<n { for j in 0..<o { y[row * o + j] += bias.storage.base[j] } }
        }
    }

    public func frozenInputGradient(_ dy: UnsafePointer<Float>, rows n: Int, accumulatingInto dx: UnsafeMutablePointer<Float>,
                                    compute: ComputeDType) {
        let (o, i) = (weight.rows, weight.columns)
        let panel = TensorStorage(count: min(panelRows, o) * i)  // [panelRows, I]
        for r0 in stride(from: 0, to: o, by: panelRows) {
            let rn = min(panelRows, o - r0)
            weight.decodeRows(r0..<(r0 + rn), into: panel.base)
            // dx += dy[:, r0..<r0+rn] · panel
            gemm(compute: compute, transB: false, m: n, n: i, k: rn, a: dy + r0, lda: o,
                 b: panel.base, ldb: i, beta: 1, c: dx, ldc: i)
        }
    }
}
