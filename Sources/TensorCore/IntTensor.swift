/// Integer data that flows beside float tensors: token ids, targets (negative = ignored),
/// positions and segment ids. Never differentiable, so it is a plain value type.
public struct IntTensor: Sendable, Equatable {
    public let shape: [Int]
    public var scalars: [Int32]

    public init(shape: [Int], scalars: [Int32]) {
        precondition(Tensor.elementCount(shape) == scalars.count,
                     "IntTensor: shape \(shape) needs \(Tensor.elementCount(shape)) values, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    public init(shape: [Int], repeating value: Int32) {
        self.init(shape: shape, scalars: [Int32](repeating: value, count: Tensor.elementCount(shape)))
    }

    public var count: Int { scalars.count }

    /// Positions 0..<T for every row of a [B, T] batch (unpacked sequences).
    public static func positions(batch: Int, length: Int) -> IntTensor {
        IntTensor(shape: [batch, length],
                  scalars: (0..<batch).flatMap { _ in (0..<length).map(Int32.init) })
    }
}
