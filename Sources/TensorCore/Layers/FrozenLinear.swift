/// A linear layer whose weight and bias take no gradient, handing out its two raw products so
/// an op built over it (LoRA) can record one node instead of the base's node plus its own.
///
/// Shapes: N rows of input, I = `inputFeatures`, O = `outputFeatures`; both products are
/// row-major and contiguous. `compute` is the dtype the caller read when its forward ran
/// (`ComputeDType.current`), passed again to the backward half so the two always agree.
public protocol FrozenLinear: LinearLayer {
    /// Whether weight and bias need no gradient. A dense layer may hold trainable ones; an op
    /// that records only the raw products must not be built over such a layer.
    var isFrozen: Bool { get }
    /// y [N, O] = x [N, I]·Wᵀ + bias (y is overwritten).
    func frozenProduct(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, compute: ComputeDType)
    /// dx [N, I] += dy [N, O]·W.
    func frozenInputGradient(_ dy: UnsafePointer<Float>, rows: Int, accumulatingInto dx: UnsafeMutablePointer<Float>,
                             compute: ComputeDType)
}

extension FrozenLinear {
    public var isFrozen: Bool { true }
}

/// The dense layer's products, always in f32 (as its `forward` computes; bf16 compute is for
/// the quantized base only). Frozen only while its tensors require no gradient.
extension DenseLinear: FrozenLinear {
    public var isFrozen: Bool { !weight.requiresGrad && !(bias?.requiresGrad ?? false) }

    public func frozenProduct(_ x: UnsafePointer<Float>, rows n: Int, into y: UnsafeMutablePointer<Float>, compute: ComputeDType) {
        let (o, i) = (outputFeatures, inputFeatures)
        gemm(transA: false, transB: true, m: n, n: o, k: i, a: x, lda: i, b: weight.storage.base, ldb: i, beta: 0, c: y, ldc: o)
        if let bias { for row in 0..<n { for j in 0..<o { y[row * o + j] += bias.storage.base[j] } } }
    }

    public func frozenInputGradient(_ dy: UnsafePointer<Float>, rows n: Int, accumulatingInto dx: UnsafeMutablePointer<Float>,
                                    compute: ComputeDType) {
        let (o, i) = (outputFeatures, inputFeatures)
        gemm(transA: false, transB: false, m: n, n: i, k: o, a: dy, lda: o, b: weight.storage.base, ldb: i, beta: 1, c: dx, ldc: i)
    }
}
