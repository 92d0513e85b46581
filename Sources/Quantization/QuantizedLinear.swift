import TensorCore

/// y = x·Wᵀ over a frozen quantized W [O, I]: forward and backward decode W panel by panel.
///
/// The weight has no gradient slot at all (QLoRA's base is frozen by construction): backward
/// sends dy·W to the input only, and only when the input needs it. Peak extra memory is one
/// panel of `panelRows` decoded rows, however large the matrix.
///
/// The products are `linearGroup`'s (Tensor+LinearGroup.swift), alone or together with the
/// other projections of the same input: under `ComputeDType.current == .bf16` (read once per
/// forward; backward follows the forward's choice) they run in `BF16GEMM` — x and each decoded
/// panel rounded to bf16, f32 accumulation, f32 results. A one-row forward is the f32 matvec,
/// which reads the encoded weight once and decodes no panel, whatever the dtype.
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
        Tensor.linearGroup(x, [LinearGroupMember(base: self)])
    }
}

extension QuantizedLinear: FrozenLinear {
    public var followsComputeDType: Bool { true }
    public var storedWeight: UnsafePointer<Float>? { nil }

    public func decodeWeightRows(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        weight.decodeRows(rows, into: destination)
    }

    public func weightMatvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        weight.matvec(x, into: y)
    }
}
