// Dimension letters used in shape comments across the engine:
//   B batch, T time (tokens), C channels (model width), H query heads, G key/value heads,
//   D head width, V vocabulary, N rows (flattened B·T), M/K/N matmul dims.

/// An n-dimensional Float32 array with contiguous row-major storage, and — when it was
/// produced by a recorded op — the node that knows how to send gradients back to its inputs.
///
/// Tensors are immutable values once created: ops allocate their output. Leaves marked
/// `requiresGrad` are trainable parameters; everything computed from them records a node,
/// everything else (frozen weights, data) records nothing and never gets a gradient buffer.
public final class Tensor {
    public let shape: [Int]
    public let storage: TensorStorage
    /// True for trainable leaves and for every recorded result that depends on one.
    public private(set) var requiresGrad: Bool
    /// How this tensor was computed; nil for leaves and for results that need no gradient.
    private(set) var node: Node?

    /// A leaf over existing storage (shape product must equal the storage count).
    public init(shape: [Int], storage: TensorStorage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(Tensor.elementCount(shape) == storage.count,
                     "Tensor: shape \(shape) needs \(Tensor.elementCount(shape)) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
        self.node = nil
    }

    /// A recorded result (see `Tensor.record`).
    init(shape: [Int], storage: TensorStorage, node: Node?) {
        self.shape = shape
        self.storage = storage
        self.requiresGrad = node != nil
        self.node = node
    }

    /// Zeros of the given shape.
    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, storage: TensorStorage(count: Tensor.elementCount(shape), zeroed: true),
                  requiresGrad: requiresGrad)
    }

    /// Copies `scalars` (row-major) into a new tensor.
    public convenience init(shape: [Int], scalars: [Float], requiresGrad: Bool = false) {
        let storage = TensorStorage(count: Tensor.elementCount(shape))
        precondition(scalars.count == storage.count,
                     "Tensor: shape \(shape) needs \(storage.count) scalars, got \(scalars.count)")
        scalars.withUnsafeBufferPointer { src in
            if let p = src.baseAddress { storage.base.update(from: p, count: src.count) }
        }
        self.init(shape: shape, storage: storage, requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor.
    public convenience init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// Seeded uniform values in [low, high).
    public convenience init(uniform shape: [Int], low: Float = -1, high: Float = 1,
                            rng: inout RandomGenerator, requiresGrad: Bool = false) {
        let storage = TensorStorage(count: Tensor.elementCount(shape))
        for i in 0..<storage.count { storage.base[i] = low + (high - low) * rng.nextUniform() }
        self.init(shape: shape, storage: storage, requiresGrad: requiresGrad)
    }

    /// Seeded normal values with the given standard deviation.
    public convenience init(normal shape: [Int], std: Float = 1, rng: inout RandomGenerator,
                            requiresGrad: Bool = false) {
        let storage = TensorStorage(count: Tensor.elementCount(shape))
        for i in 0..<storage.count { storage.base[i] = std * rng.nextNormal() }
        self.init(shape: shape, storage: storage, requiresGrad: requiresGrad)
    }

    // MARK: Shape facts

    public var rank: Int { shape.count }
    public var count: Int { storage.count }

    /// Dimension `axis`, negative axes counting from the end.
    public func dim(_ axis: Int) -> Int { shape[normalize(axis: axis)] }

    func normalize(axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
        return a
    }

    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            precondition(!overflow, "Tensor: element count of \(shape) overflows")
            n = p
        }
        return n
    }

    /// Row-major strides, in elements.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    // MARK: Data access

    /// A copy of the elements, row-major (tests and small tensors only).
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.base, count: count)) }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) elements")
        return storage.base[0]
    }

    @inlinable public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// In-place writes, for optimizers updating parameters and loaders filling leaves.
    /// Never call it on a tensor an unfinished backward pass still needs.
    @inlinable public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(storage.buffer)
    }

    /// Takes the node away (graph teardown only, when nothing else references this tensor).
    func detachNode() -> Node? {
        defer { node = nil }
        return node
    }

    /// A leaf that shares this tensor's data but is cut off from its graph.
    public func detached(requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: storage, requiresGrad: requiresGrad)
    }

    /// Marks a leaf trainable (or frozen). Results of recorded ops cannot be re-marked.
    public func setRequiresGrad(_ value: Bool) {
        precondition(node == nil, "setRequiresGrad: only leaves can be marked trainable")
        requiresGrad = value
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(\(shape)\(requiresGrad ? ", grad" : ""): [\(preview)\(count > 8 ? ", …" : "")])"
    }
}
