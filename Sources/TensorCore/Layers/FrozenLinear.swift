/// A layer that can join other projections of the same input in one `linearGroup` op
/// (Tensor+LinearGroup.swift): a frozen base, or a LoRA adapter over one.
public protocol GroupableLinear: LinearLayer {
    /// Whether the layer can join a group as it is now (its base is frozen).
    var canJoinGroup: Bool { get }
    /// The layer as a member of one forward's group. A training adapter draws its dropout
    /// seed here, so call it once per forward and only after `canJoinGroup` said yes.
    func groupMember() -> LinearGroupMember
}

/// A linear layer whose weight and bias take no gradient, handing out its weight row panel by
/// row panel: ops built over it (a LoRA adapter, projections sharing an input) then run the
/// products themselves and record one node instead of one per layer.
///
/// Shapes: I = `inputFeatures`, O = `outputFeatures`; W is [O, I], row-major.
public protocol FrozenLinear: GroupableLinear {
    /// Whether weight and bias need no gradient. A dense layer may hold trainable ones; an op
    /// that records only the raw products must not be built over such a layer.
    var isFrozen: Bool { get }
    /// Whether its products run in `ComputeDType.current` (a quantized base) or always in f32.
    var followsComputeDType: Bool { get }
    /// Rows decoded per GEMM when W is decoded panel by panel.
    var panelRows: Int { get }
    /// The bias [O], frozen.
    var bias: Tensor? { get }
    /// W itself when it is stored as f32 (read in place, never copied); nil for encoded weights.
    var storedWeight: UnsafePointer<Float>? { get }
    /// Decodes W's rows `rows` into `destination` [rows.count, I].
    func decodeWeightRows(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>)
    /// y [O] = W·x [I], no bias: the one-row (generation) product, which may read encoded
    /// weights directly instead of decoding a panel.
    func weightMatvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>)
}

extension FrozenLinear {
    public var isFrozen: Bool { true }
    public var canJoinGroup: Bool { isFrozen }
    public func groupMember() -> LinearGroupMember { LinearGroupMember(base: self) }
}

/// The dense layer's products, always in f32 (as its `forward` computes; bf16 compute is for
/// the quantized base only), reading the weight in place. Frozen only while its tensors
/// require no gradient.
extension DenseLinear: FrozenLinear {
    public var isFrozen: Bool { !weight.requiresGrad && !(bias?.requiresGrad ?? false) }
    public var followsComputeDType: Bool { false }
    public var panelRows: Int { outputFeatures }
    public var storedWeight: UnsafePointer<Float>? { UnsafePointer(weight.storage.base) }

    public func decodeWeightRows(_ rows: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let i = inputFeatures
        destination.update(from: weight.storage.base + rows.lowerBound * i, count: rows.count * i)
    }

    public func weightMatvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        gemv(trans: false, m: outputFeatures, n: inputFeatures, a: weight.storage.base, lda: inputFeatures, x: x, y: y)
    }
}
