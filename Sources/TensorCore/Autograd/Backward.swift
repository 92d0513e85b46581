/// Reverse-mode differentiation over the recorded graph.
///
/// The tape is the graph itself: each recorded op hangs its node off its output, so
/// dropping a loss frees everything it recorded. `backward` collects the nodes reachable
/// from the loss, orders them so every node runs after all nodes that consume its output
/// (reverse topological order, i.e. the reverse of execution order), and runs them.
extension Tensor {
    /// Back-propagates from this tensor. A scalar loss gets seed gradient 1; otherwise pass
    /// `seed` with this tensor's shape. Returns the gradients of the trainable leaves.
    @discardableResult
    public func backward(seed: Tensor? = nil) -> GradientStore {
        if let seed {
            precondition(seed.shape == shape, "backward: seed shape \(seed.shape) != output shape \(shape)")
            return backward(seedGradient: UnsafePointer(seed.storage.base))
        }
        precondition(count == 1, "backward: output of shape \(shape) is not a scalar; pass a seed")
        var one: Float = 1
        return backward(seedGradient: &one)
    }

    /// Back-propagates `seedGradient` (this tensor's count of values) from this tensor.
    func backward(seedGradient: UnsafePointer<Float>) -> GradientStore {
        let store = GradientStore()
        guard requiresGrad else { return store }
        store.buffer(for: self).base.update(from: seedGradient, count: count)
        for tensor in topologicalOrder() {
            guard let node = tensor.node else { continue }
            let grad = store.buffer(for: tensor)
            node.backward(BackwardContext(output: UnsafePointer(tensor.storage.base),
                                          grad: UnsafePointer(grad.base),
                                          inputs: node.inputs, store: store))
            store.release(tensor)  // an intermediate's gradient is consumed once its node ran
        }
        return store
    }

    /// Tensors with nodes reachable from self, each before all of its inputs.
    func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative post-order DFS: deep graphs (hundreds of layers) must not overflow the stack.
        var stack: [(tensor: Tensor, expanded: Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard let node = tensor.node, visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in node.inputs where input.node != nil && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order.reversed()
    }
}
