import TensorCore

/// y = W·x + scale · B·A·dropout(x), over any (frozen, possibly quantized) base layer.
///
/// A [r, in] and B [out, r] are the only trainable tensors; the base is never touched and gets
/// no gradient. Tensor names follow PEFT (`<module>.lora_A.weight`), so saving is a rename-free
/// write. Over a `FrozenLinear` base (every projection of a loaded model) the whole layer is
/// one `linearGroup` op, alone or with the other projections of its input (their adapters'
/// A then multiply x as one matrix); over any other base it is composed of generic ops.
public final class LoRALinear: GroupableLinear {
    public let base: any LinearLayer
    /// `base` when it hands out raw products, cast once here rather than on every forward.
    let frozenBase: (any FrozenLinear)?
    public let a: Tensor  // [r, I]
    public let b: Tensor  // [O, r]
    public let scale: Float
    public let dropout: Float
    /// Dropout masks come from here while training (seeded by the caller).
    public var dropoutRNG: RandomGenerator
    /// The index of the first token of this forward's input within the batch whose masks it
    /// must draw: 0, unless a data-parallel rank computes rows of a micro-batch that starts
    /// elsewhere (then element e of the input is element `dropoutOffset·in + e` of the whole).
    public var dropoutOffset = 0
    public var isTraining = true

    public init(base: any LinearLayer, a: Tensor, b: Tensor, scale: Float, dropout: Float = 0, rng: RandomGenerator) {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[1] == base.inputFeatures && b.shape[0] == base.outputFeatures && a.shape[0] == b.shape[1],
                     "LoRALinear: A \(a.shape) and B \(b.shape) do not fit a \(base.inputFeatures)→\(base.outputFeatures) layer")
        self.base = base
        self.frozenBase = base as? any FrozenLinear
        self.a = a
        self.b = b
        self.scale = scale
        self.dropout = dropout
        self.dropoutRNG = rng
    }

    /// A fresh adapter for `base` initialised as `config` says (B zero: the output starts equal
    /// to the base's).
    public convenience init(base: any LinearLayer, config: LoRAConfig, rng: inout RandomGenerator) {
        let (r, i, o) = (config.rank, base.inputFeatures, base.outputFeatures)
        let a: Tensor
        switch config.initialization {
        case .default:
            // PEFT: kaiming_uniform_(A, a=√5), whose bound is 1/√in.
            let bound = 1 / Float(i).squareRoot()
            a = Tensor(uniform: [r, i], low: -bound, high: bound, rng: &rng, requiresGrad: true)
        case .gaussian:
            a = Tensor(normal: [r, i], std: 1 / Float(r), rng: &rng, requiresGrad: true)
        case .pissa, .loftq:
            preconditionFailure("LoRALinear: \(config.initialization) initialisation goes through init(decomposing:)")
        }
        self.init(base: base, a: a, b: Tensor(zeros: [o, r], requiresGrad: true), scale: config.scale,
                  dropout: config.dropout, rng: rng.split())
    }

    public var trainableParameters: [Tensor] { [a, b] }
    public var randomState: RandomGenerator? {
        get { dropoutRNG }
        set { if let newValue { dropoutRNG = newValue } }
    }

    public var inputFeatures: Int { base.inputFeatures }
    public var outputFeatures: Int { base.outputFeatures }

    public func forward(_ x: Tensor) -> Tensor {  // x [..., I] → [..., O]
        if canJoinGroup { return Tensor.linearGroup(x, [groupMember()]) }
        let frozen = base.forward(x)
        let dropped = isTraining && dropout > 0 ? x.dropout(probability: dropout, rng: &dropoutRNG, offset: maskOffset) : x
        let update = dropped.matmul(a, transposeB: true).matmul(b, transposeB: true)  // [..., r] → [..., O]
        return frozen + update.scaled(by: scale)
    }

    /// The mask counter of this forward's first input element.
    var maskOffset: UInt64 { UInt64(dropoutOffset) &* UInt64(base.inputFeatures) }

    public var canJoinGroup: Bool { frozenBase?.isFrozen ?? false }

    /// The base with this adapter's update. PEFT drops the adapter's input only; the mask is
    /// drawn as `dropout` draws it (one seed from the generator, so rewinds and resumes replay
    /// it), here, once per forward.
    public func groupMember() -> LinearGroupMember {
        guard let frozenBase else { preconditionFailure("LoRALinear: a group member needs a frozen base") }
        let mask = isTraining && dropout > 0 ? DropoutMask(probability: dropout, seed: dropoutRNG.next(), offset: maskOffset) : nil
        return LinearGroupMember(base: frozenBase, adapter: LowRankUpdate(a: a, b: b, scale: scale, mask: mask))
    }

    /// The merged weight delta scale·B·A [O, I] (for merging into the base).
    public func delta() -> Tensor { noGrad { b.matmul(a).scaled(by: scale) } }
}
