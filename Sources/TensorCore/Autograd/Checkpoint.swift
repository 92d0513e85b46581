/// Gradient checkpointing: a block's forward keeps no graph, and backward recomputes it.
///
/// Training memory is dominated by the activations a recorded graph keeps for backward
/// (SmolLM2-135M at batch 4 × 256: ~140 MB per decoder layer). A checkpointed block keeps only
/// its input; backward runs the block again with recording on, back-propagates through that
/// one block and drops it, at the cost of one extra forward per block.
extension Tensor {
    /// `body(x)`, recorded as one op whose backward recomputes `body` on the same input.
    ///
    /// `parameters` are the trainable tensors `body` reads (they get their gradients through
    /// the recomputation). `body` must compute the same values both times: `rewind` runs
    /// before the recomputation and must put back any random state the first run consumed
    /// (dropout generators), so masks are replayed rather than redrawn.
    public static func checkpointed(_ x: Tensor, parameters: [Tensor], rewind: @escaping () -> Void,
                                    _ body: @escaping (Tensor) -> Tensor) -> Tensor {
        guard GradMode.isEnabled, x.requiresGrad || parameters.contains(where: \.requiresGrad) else { return body(x) }
        let kept = KeptProducts.budget.map(KeptProducts.init)
        let y = noGrad { KeptProducts.$current.withValue(kept) { body(x) } }
        kept?.startReplay()
        let shape = y.shape
        // The closure reaches the input through the context, never by capture (see Node).
        return record("checkpoint", shape: shape, storage: y.storage, inputs: [x] + parameters) { ctx in
            rewind()
            let input = Tensor(shape: ctx.inputs[0].shape, storage: ctx.inputs[0].storage, requiresGrad: ctx.needsGradient(0))
            let replayed = GradMode.$isEnabled.withValue(true) {
                GradMode.$backwardFollows.withValue(true) { KeptProducts.$current.withValue(kept) { body(input) } }
            }
            precondition(replayed.shape == shape, "checkpointed: recomputation gave \(replayed.shape), first run \(shape)")
            let inner = replayed.backward(seedGradient: ctx.grad)
            for i in ctx.inputs.indices {
                let source = i == 0 ? input : ctx.inputs[i]
                guard let sum = ctx.gradient(i), let part = inner[source] else { continue }
                for j in 0..<part.count { sum[j] += part.storage.base[j] }
            }
        }
    }
}

/// Frozen-base products a checkpointed block keeps from its first run for its recomputation,
/// which then skips those GEMMs (they depend only on the block's input, the same both times,
/// so the replay is bit-identical). What all blocks of a forward pass keep is bounded by a
/// `KeptProducts.Budget` set around that pass; blocks past the budget recompute everything.
///
/// Ops that produce such products (`linearGroup`) call `keep` in the first run, in order, and
/// `take` in the replay, in the same order: the n-th take returns the n-th kept product.
public final class KeptProducts: @unchecked Sendable {
    /// Bytes the blocks of one forward pass may keep between them (one instance per pass;
    /// blocks run one after another on the calling thread).
    public final class Budget: @unchecked Sendable {
        public let bytes: Int
        public private(set) var used = 0

        public init(bytes: Int) { self.bytes = max(0, bytes) }

        func claim(_ size: Int) -> Bool {
            guard used + size <= bytes else { return false }
            used += size
            return true
        }
    }

    /// Set by the caller around a training forward pass (the model, from the recipe's
    /// `training.checkpoint_keep_mb`); nil keeps nothing.
    @TaskLocal public static var budget: Budget?
    /// The running block's store (first run or replay); nil outside checkpointed blocks.
    @TaskLocal static var current: KeptProducts?

    private let budget: Budget
    private var products: [TensorStorage?] = []
    private var replaying = false, cursor = 0, full = false

    init(budget: Budget) { self.budget = budget }

    /// First run: keeps `count` floats copied from `values` if the budget allows (once one
    /// product does not fit, none after it is kept either, so replay order stays aligned).
    func keep(_ values: UnsafePointer<Float>, count: Int) {
        guard !replaying, !full else { return }
        guard budget.claim(count * MemoryLayout<Float>.stride) else {
            full = true
            return
        }
        let copy = TensorStorage(count: count)
        copy.base.update(from: values, count: count)
        products.append(copy)
    }

    /// Replay: the next kept product (handed over, not copied), or nil to compute it.
    func take(count: Int) -> TensorStorage? {
        guard replaying, cursor < products.count, let product = products[cursor] else { return nil }
        precondition(product.count == count, "KeptProducts: the recomputation asked for \(count) values where the first run kept \(product.count)")
        products[cursor] = nil
        cursor += 1
        return product
    }

    func startReplay() { replaying = true }
}
