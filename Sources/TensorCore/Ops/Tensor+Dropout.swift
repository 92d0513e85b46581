/// Inverted dropout: zero each element with probability p, scale survivors by 1/(1−p), so
/// evaluation needs no rescaling. The mask comes from the generator passed in.
extension Tensor {
    public func dropout(probability p: Float, rng: inout RandomGenerator) -> Tensor {
        if p == 0 { return self }
        let mask = Tensor.dropoutMask(count: count, probability: p, rng: &rng)  // same shape as self
        let out = TensorStorage(count: count)
        for i in 0..<count { out.base[i] = storage.base[i] * mask.base[i] }
        let n = count
        return Tensor.record("dropout", shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            for i in 0..<n { dx[i] += ctx.grad[i] * mask.base[i] }
        }
    }

    /// The mask of `dropout`: per element, in order, one uniform draw; 0 when it falls below p,
    /// else 1/(1−p). Fused ops that drop their input draw through here too, so they consume a
    /// generator exactly as `dropout` does and rewinds and resumes replay the same masks.
    public static func dropoutMask(count: Int, probability p: Float, rng: inout RandomGenerator) -> TensorStorage {
        precondition(p >= 0 && p < 1, "dropout: probability \(p) not in [0, 1)")
        let keepScale = 1 / (1 - p)
        let mask = TensorStorage(count: count)  // 0 or 1/(1−p) per element
        for i in 0..<count { mask.base[i] = rng.nextUniform() < p ? 0 : keepScale }
        return mask
    }
}
