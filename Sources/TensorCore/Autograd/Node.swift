/// One recorded op: its inputs and the closure that sends the output's gradient back.
///
/// The closure must not capture the output tensor (the output owns the node); it reads the
/// output's data through `BackwardContext.output` instead.
final class Node {
    let op: String
    fileprivate(set) var inputs: [Tensor]
    let backward: (BackwardContext) -> Void

    init(op: String, inputs: [Tensor], backward: @escaping (BackwardContext) -> Void) {
        self.op = op
        self.inputs = inputs
        self.backward = backward
    }

    /// Releases the graph behind this node iteratively. Plain reference counting would free
    /// a chain of N ops with N nested deinits and overflow the stack on deep graphs; here each
    /// input this node held the last reference to hands its own inputs to a work list first.
    deinit {
        var pending = inputs
        inputs.removeAll()
        while var tensor = pending.popLast() {
            // Only a tensor holds its node, so a uniquely referenced tensor's node is ours to
            // empty; it is then released with nothing left to recurse on.
            if isKnownUniquelyReferenced(&tensor), let node = tensor.detachNode() {
                pending.append(contentsOf: node.inputs)
                node.inputs.removeAll()
            }
        }
    }
}

/// What a backward closure sees: the output, its gradient, and accumulating gradient
/// buffers for the inputs that need one.
public struct BackwardContext {
    /// The output's data (e.g. softmax backward reuses its probabilities).
    public let output: UnsafePointer<Float>
    /// dLoss/dOutput, same shape as the output.
    public let grad: UnsafePointer<Float>
    let inputs: [Tensor]
    let store: GradientStore

    /// The zero-initialised, accumulating gradient buffer of input `i`, or nil when that
    /// input needs no gradient (frozen weights, data): callers skip that work entirely.
    public func gradient(_ i: Int) -> UnsafeMutablePointer<Float>? {
        let input = inputs[i]
        guard input.requiresGrad else { return nil }
        return store.buffer(for: input).base
    }

    /// Whether input `i` wants a gradient (to skip computing it).
    public func needsGradient(_ i: Int) -> Bool { inputs[i].requiresGrad }
}

extension Tensor {
    /// Builds an op's result, recording `backward` only when gradients are enabled and some
    /// input requires one — so subgraphs that reach no trainable parameter cost nothing.
    /// Other modules define their fused ops (quantized matmul, LoRA) through this too.
    public static func record(_ op: String, shape: [Int], storage: TensorStorage, inputs: [Tensor],
                       backward: @escaping (BackwardContext) -> Void) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            return Tensor(shape: shape, storage: storage, node: Node(op: op, inputs: inputs, backward: backward))
        }
        return Tensor(shape: shape, storage: storage, node: nil)
    }
}
