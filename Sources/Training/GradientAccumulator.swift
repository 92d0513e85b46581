import TensorCore

/// Sums the gradients of several micro-batches per parameter, then clips them by their global
/// norm — what one optimizer step of an accumulated batch sees.
public struct GradientAccumulator {
    /// Summed gradients by parameter name, allocated on first use and reused every step.
    public private(set) var sums: [String: TensorStorage] = [:]

    public init() {}

    /// Adds every parameter's gradient from `store` (parameters backward did not reach add 0).
    public mutating func add(_ parameters: [(name: String, tensor: Tensor)], from store: GradientStore) {
        for (name, p) in parameters {
            if sums[name] == nil { sums[name] = TensorStorage(count: p.count, zeroed: true) }
            guard let sum = sums[name], let g = store[p] else { continue }
            axpy(p.count, 1, g.storage.base, sum.base)
        }
    }

    /// √(Σ g²) over every summed gradient, accumulated in Double.
    public var globalNorm: Double {
        var total = 0.0
        for name in sums.keys.sorted() {
            guard let s = sums[name] else { continue }
            for i in 0..<s.count { total += Double(s.base[i]) * Double(s.base[i]) }
        }
        return total.squareRoot()
    }

    /// Scales all gradients so their global norm is at most `maxNorm` (PyTorch's
    /// clip_grad_norm_: factor maxNorm / (norm + 1e-6), applied only when below 1). Returns
    /// the norm before clipping.
    @discardableResult
    public mutating func clip(maxNorm: Double) -> Double {
        let norm = globalNorm
        let factor = maxNorm / (norm + 1e-6)
        if factor < 1 {
            for s in sums.values { for i in 0..<s.count { s.base[i] = Float(Double(s.base[i]) * factor) } }
        }
        return norm
    }

    /// Zeroes the sums for the next step (buffers kept).
    public mutating func reset() {
        for s in sums.values { s.base.update(repeating: 0, count: s.count) }
    }
}
