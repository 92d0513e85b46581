/// One projection in a `linearGroup`: a frozen base and, when adapted, its LoRA update.
public struct LinearGroupMember {
    public let base: any FrozenLinear
    public let adapter: LowRankUpdate?

    public init(base: any FrozenLinear, adapter: LowRankUpdate? = nil) {
        precondition(adapter.map { $0.a.shape[1] == base.inputFeatures && $0.b.shape[0] == base.outputFeatures } ?? true,
                     "LinearGroupMember: the adapter does not fit a \(base.inputFeatures)→\(base.outputFeatures) base")
        self.base = base
        self.adapter = adapter
    }
}

/// LoRA's update scale·dropout(x)·Aᵀ·Bᵀ, added to a frozen base's output: A [r, I], B [O, r].
public struct LowRankUpdate {
    public let a: Tensor
    public let b: Tensor
    public let scale: Float
    /// This adapter's own mask on its input (PEFT drops each adapter's input separately), or
    /// nil when it does not drop.
    public let mask: DropoutMask?

    public init(a: Tensor, b: Tensor, scale: Float, mask: DropoutMask?) {
        precondition(a.rank == 2 && b.rank == 2 && a.shape[0] == b.shape[1], "LowRankUpdate: A \(a.shape) and B \(b.shape) do not chain")
        self.a = a
        self.b = b
        self.scale = scale
        self.mask = mask
    }
}

/// Policies of the `linearGroup` op (its arithmetic is in the extensions below).
public enum LinearGroup {
    /// The most decoded weight bytes one group keeps from a recomputed forward for the
    /// backward right after it. SmolLM2-135M's largest group (gate and up) is 7 MiB and a
    /// 1B model's q, k and v 25 MiB; a 7B model's groups (200+ MiB) decode panel by panel
    /// twice instead, so the 6 GiB step does not grow.
    public static let keptWeightBytes = 64 << 20
}

extension Tensor {
    /// The projections of one input as one recorded op: x [..., I] → [..., ΣO], each
    /// member's base output plus its adapter's update in its own columns, in member order.
    ///
    /// Grouping reads x once where separate layers read it once each: in bf16 x is packed
    /// once for every member's weight; with no adapter dropping its input, the adapters' A
    /// act as one [Σr, I] matrix, so x·Aᵀ, dA and the adapters' share of dx are one GEMM each.
    ///
    /// While a checkpointed block is recomputed (`GradMode.backwardFollows`), the members'
    /// decoded weights (up to `LinearGroup.keptWeightBytes`) stay for the backward that
    /// follows, which then decodes nothing and forms the bases' dx as one GEMM over ΣO; and
    /// when the block's first run kept this op's frozen product (`KeptProducts`, within
    /// `training.checkpoint_keep_mb`), the recomputation takes it instead of multiplying again.
    ///
    /// Legend: N rows (all leading dimensions of x), I input features, O_k member k's outputs.
    public static func linearGroup(_ x: Tensor, _ members: [LinearGroupMember]) -> Tensor {
        guard let first = members.first else { preconditionFailure("linearGroup: no members") }
        let i = first.base.inputFeatures
        precondition(x.shape.last == i, "linearGroup: input \(x.shape) does not end in \(i) features")
        for member in members {
            precondition(member.base.inputFeatures == i && member.base.isFrozen,
                         "linearGroup: every member must be frozen and read \(i) features")
        }
        let n = x.count / max(i, 1)
        // A dense member (always f32) keeps the whole group in f32; loaded models have none.
        let compute: ComputeDType = members.allSatisfy(\.base.followsComputeDType) ? .current : .f32
        let o = members.reduce(0) { $0 + $1.base.outputFeatures }
        // A checkpoint's recomputation may find this product kept from the first run.
        let store = n > 1 ? KeptProducts.current : nil
        let kept = store?.take(count: n * o)
        // dx re-reads the weights right after a recomputation, whether or not the product was kept.
        let keepDecoded = n > 1 && GradMode.isEnabled && GradMode.backwardFollows && x.requiresGrad
        let frozen = FrozenGroupProducts(bases: members.map(\.base), keepDecoded: keepDecoded)
        let y = kept ?? TensorStorage(count: n * o)  // [N, ΣO]
        if kept == nil {
            frozen.forward(x.storage.base, rows: n, into: y.base, compute: compute)
            store?.keep(y.base, count: n * o)
        }

        let adapted = members.enumerated().compactMap { k, member in member.adapter.map { (update: $0, column: frozen.offsets[k]) } }
        let update = adapted.isEmpty ? nil
            : LowRankGroupUpdate(adapted.map(\.update), columns: adapted.map(\.column), rows: n, outputs: o, x: x.storage, y: y.base)
        let xs = x.storage
        let inputs = [x] + adapted.flatMap { [$0.update.a, $0.update.b] }
        return record("linear_group", shape: Array(x.shape.dropLast()) + [o], storage: y, inputs: inputs) { ctx in
            update?.backward(ctx, x: xs.base)
            guard let dx = ctx.gradient(0) else { return }
            frozen.inputGradient(ctx.grad, rows: n, accumulatingInto: dx, compute: compute)
        }
    }

    /// x through each of `layers` ([..., O_k] each): one `linearGroup` op sliced apart when
    /// every layer can join one, else each layer's own forward.
    public static func project(_ x: Tensor, through layers: [any LinearLayer]) -> [Tensor] {
        guard let members = groupMembers(layers) else { return layers.map { $0.forward(x) } }
        let joined = linearGroup(x, members)  // [..., ΣO]
        guard layers.count > 1 else { return [joined] }
        var start = 0
        return layers.map { layer in
            defer { start += layer.outputFeatures }
            return joined.slice(axis: -1, start..<(start + layer.outputFeatures))
        }
    }

    /// x through each of `layers`, side by side [..., ΣO] for a consumer that reads the
    /// stacked result in place (`swiglu(stacked:)`): one `linearGroup` op when every layer
    /// can join one, else the layers' own outputs concatenated.
    public static func projectStacked(_ x: Tensor, through layers: [any LinearLayer]) -> Tensor {
        guard let members = groupMembers(layers) else { return concat(layers.map { $0.forward(x) }, axis: -1) }
        return linearGroup(x, members)
    }

    /// The layers as group members (drawing their dropout seeds), or nil when one cannot join.
    private static func groupMembers(_ layers: [any LinearLayer]) -> [LinearGroupMember]? {
        let groupable = layers.compactMap { $0 as? any GroupableLinear }
        guard groupable.count == layers.count, groupable.allSatisfy(\.canJoinGroup) else { return nil }
        return groupable.map { $0.groupMember() }
    }
}
