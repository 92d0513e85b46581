import TensorCore

/// Seeded inputs for tests: the same seed gives the same tensors on every machine.
public enum Fixtures {
    /// Uniform values in [-1, 1), optionally trainable.
    public static func tensor(_ shape: [Int], seed: UInt64, requiresGrad: Bool = true, scale: Float = 1) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor(uniform: shape, low: -scale, high: scale, rng: &rng, requiresGrad: requiresGrad)
    }

    /// Integers in 0..<upper.
    public static func ints(_ shape: [Int], upper: Int, seed: UInt64) -> IntTensor {
        var rng = RandomGenerator(seed: seed)
        return IntTensor(shape: shape, scalars: (0..<Tensor.elementCount(shape)).map { _ in Int32(rng.next() % UInt64(upper)) })
    }
}
