/// Gradients kept apart from tensors (candle's GradStore): a map from tensor to its
/// gradient buffer, created by `backward` and consumed by the optimizer.
///
/// During backward it also holds the gradients of intermediate results; each is released
/// as soon as its node has run, so only parameters' gradients remain afterwards.
public final class GradientStore {
    var buffers: [ObjectIdentifier: (tensor: Tensor, storage: TensorStorage)] = [:]

    public init() {}

    /// The accumulating buffer for `tensor`, created zero-filled on first use.
    func buffer(for tensor: Tensor) -> TensorStorage {
        let key = ObjectIdentifier(tensor)
        if let existing = buffers[key] { return existing.storage }
        let storage = TensorStorage(count: tensor.count, zeroed: true)
        buffers[key] = (tensor, storage)
        return storage
    }

    func release(_ tensor: Tensor) { buffers[ObjectIdentifier(tensor)] = nil }

    /// The gradient of `tensor`, or nil if backward never reached it.
    public subscript(tensor: Tensor) -> Tensor? {
        guard let entry = buffers[ObjectIdentifier(tensor)] else { return nil }
        return Tensor(shape: tensor.shape, storage: entry.storage)
    }

    /// Tensors that hold a gradient (after backward: the trainable leaves that were reached).
    public var tensors: [Tensor] { buffers.values.map(\.tensor) }
}
