/// y = x·Wᵀ (+ b) over the last axis: x [..., I] → y [..., O].
///
/// Models build their projections from this protocol only, so a dense weight, a frozen 4-bit
/// weight (Quantization) or an adapted one (LoRA) can stand in for one another without the
/// model knowing which it holds.
public protocol LinearLayer: AnyObject {
    var inputFeatures: Int { get }
    var outputFeatures: Int { get }
    func forward(_ x: Tensor) -> Tensor
    /// Trainable tensors the layer owns (an adapter's A and B); empty for frozen layers.
    var trainableParameters: [Tensor] { get }
    /// The random state `forward` consumes (dropout), so a checkpointed block can rewind it
    /// and recompute with the same masks; nil for deterministic layers.
    var randomState: RandomGenerator? { get set }
}

extension LinearLayer {
    public var trainableParameters: [Tensor] { [] }
    public var randomState: RandomGenerator? {
        get { nil }
        set {}
    }
}

/// A linear layer over a dense Float32 weight [O, I] and optional bias [O].
public final class DenseLinear: LinearLayer {
    public let weight: Tensor  // [O, I]
    public let bias: Tensor?   // [O]

    public init(weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.rank == 2, "DenseLinear: weight must be [out, in], got \(weight.shape)")
        if let bias { precondition(bias.shape == [weight.shape[0]], "DenseLinear: bias \(bias.shape) does not match weight \(weight.shape)") }
        self.weight = weight
        self.bias = bias
    }

    public var inputFeatures: Int { weight.shape[1] }
    public var outputFeatures: Int { weight.shape[0] }

    public func forward(_ x: Tensor) -> Tensor {
        let y = x.matmul(weight, transposeB: true)  // [..., O]
        return bias.map { y + $0 } ?? y
    }
}
