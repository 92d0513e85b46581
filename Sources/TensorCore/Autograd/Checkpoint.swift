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
        let y = noGrad { body(x) }
        let shape = y.shape
        // The closure reaches the input through the context, never by capture (see Node).
        return record("checkpoint", shape: shape, storage: y.storage, inputs: [x] + parameters) { ctx in
            rewind()
            let input = Tensor(shape: ctx.inputs[0].shape, storage: ctx.inputs[0].storage, requiresGrad: ctx.needsGradient(0))
            let replayed = GradMode.$isEnabled.withValue(true) { GradMode.$backwardFollows.withValue(true) { body(input) } }
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
