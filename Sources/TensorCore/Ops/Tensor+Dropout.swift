/// Inverted dropout: zero each element with probability p, scale survivors by 1/(1−p), so
/// evaluation needs no rescaling. The mask comes from the generator passed in.
extension Tensor {
    public func dropout(probability p: Float, rng: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: probability \(p) not in [0, 1)")
        if p == 0 { return self }
        let keepScale = 1 / (1 - p)
        let mask = TensorStorage(count: count)  // 0 or 1/(1−p) per element
        for i in 0..<count { mask.base[i] = rng.nextUniform() < p ? 0 : keepScale }
        let out = TensorStorage(count: count)
        for i in 0..<count { out.base[i] = storage.base[i] * mask.base[i] }
        let n = count
        return Tensor.record("dropout", shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            for i in 0..<n { dx[i] += ctx.grad[i] * mask.base[i] }
        }
    }
}
