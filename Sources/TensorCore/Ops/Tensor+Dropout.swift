import CKernels

/// Inverted dropout: zero each element with probability p, scale survivors by 1/(1−p), so
/// evaluation needs no rescaling.
///
/// The mask is counter-based (`lk_dropout_f32`): one 64-bit seed drawn from the generator
/// passed in decides every element, so the generator advances by exactly one draw per call
/// (what checkpoint rewinds and resumes replay), the mask is generated in parallel and SIMD,
/// and backward regenerates it instead of keeping a [count] mask alive until then.
extension Tensor {
    /// `offset`: the mask's counter for element 0, when this tensor is a slice of a larger one
    /// whose mask it must reproduce (a data-parallel rank computing part of a micro-batch).
    public func dropout(probability p: Float, rng: inout RandomGenerator, offset: UInt64 = 0) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: probability \(p) not in [0, 1)")
        if p == 0 { return self }
        let mask = DropoutMask(probability: p, seed: rng.next(), offset: offset)
        let out = TensorStorage(count: count)
        mask.apply(storage.base, into: out.base, count: count)
        let n = count
        return Tensor.record("dropout", shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            mask.accumulateGradient(ctx.grad, into: dx, count: n)
        }
    }
}

/// One dropout mask: element i of a tensor is dropped when its counter-based 24-bit uniform
/// (`lk_dropout_f32`, counter `offset + i`) is below p, exactly as `uniform < p` with a 24-bit
/// uniform in [0, 1).
public struct DropoutMask: Sendable {
    public let seed: UInt64
    /// The counter of element 0: a slice starting at element k of a tensor draws that tensor's
    /// mask with offset k.
    public let offset: UInt64
    /// ⌈p·2²⁴⌉: a 24-bit draw u is dropped when u < threshold (u·2⁻²⁴ < p).
    let threshold: UInt32
    /// 1/(1−p), the survivors' scale.
    public let keepScale: Float

    public init(probability p: Float, seed: UInt64, offset: UInt64 = 0) {
        precondition(p >= 0 && p < 1, "DropoutMask: probability \(p) not in [0, 1)")
        self.seed = seed
        self.offset = offset
        threshold = UInt32((Double(p) * 16_777_216).rounded(.up))
        keepScale = 1 / (1 - p)
    }

    /// out = mask ⊙ x · keepScale over `count` elements (out may be x).
    public func apply(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count, minChunk: 1 << 15) { r in
            lk_dropout_f32(seed, offset &+ UInt64(r.lowerBound), x + r.lowerBound, out + r.lowerBound, r.count, threshold, keepScale)
        }
    }

    /// dx += mask ⊙ dy · keepScale.
    public func accumulateGradient(_ dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count, minChunk: 1 << 15) { r in
            lk_dropout_backward_f32(seed, offset &+ UInt64(r.lowerBound), dy + r.lowerBound, dx + r.lowerBound, r.count, threshold, keepScale)
        }
    }
}
