import Foundation

/// Rotary position embedding in the "rotate half" layout Hugging Face uses: the first
/// `rotaryDim` channels of each head form pairs (i, i + rotaryDim/2) rotated by
/// position · inverseFrequency[i]; the remaining channels pass through.
///
/// GGUF files store Q/K rows permuted for an interleaved layout; the model loader undoes
/// that permutation once, so this is the only RoPE layout the engine knows.
public struct RotaryEmbedding: Sendable, Equatable {
    /// [rotaryDim / 2]; variants (Llama 3 scaling, linear scaling) differ only here.
    public let inverseFrequencies: [Float]
    public var rotaryDim: Int { inverseFrequencies.count * 2 }

    public init(inverseFrequencies: [Float]) { self.inverseFrequencies = inverseFrequencies }

    /// The standard frequencies 1 / base^(2i / rotaryDim), computed in Float32 as transformers does.
    public init(rotaryDim: Int, base: Float) {
        precondition(rotaryDim > 0 && rotaryDim % 2 == 0, "RotaryEmbedding: rotaryDim \(rotaryDim) must be even and positive")
        inverseFrequencies = (0..<(rotaryDim / 2)).map { i in
            1 / Foundation.pow(base, Float(2 * i) / Float(rotaryDim))
        }
    }

    /// cos and sin tables [P, rotaryDim/2] for positions `range` (row k is position
    /// range.lowerBound + k): a decoding step far into a conversation needs one row, not all.
    func tables(positions range: ClosedRange<Int>) -> (cos: [Float], sin: [Float]) {
        let half = inverseFrequencies.count
        var c = [Float](repeating: 0, count: range.count * half), s = c
        for (row, p) in range.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                c[row * half + i] = Foundation.cos(angle)
                s[row * half + i] = Foundation.sin(angle)
            }
        }
        return (c, s)
    }
}

extension Tensor {
    /// x [B, T, H, D] rotated at `positions` [B, T] (positions restart per packed sequence).
    public func rotary(_ rope: RotaryEmbedding, positions: IntTensor) -> Tensor {
        precondition(rank == 4, "rotary: expects [B, T, H, D], got \(shape)")
        let (b, t, h, d) = (shape[0], shape[1], shape[2], shape[3])
        precondition(positions.shape == [b, t], "rotary: positions \(positions.shape) must be [\(b), \(t)]")
        precondition(rope.rotaryDim <= d, "rotary: rotaryDim \(rope.rotaryDim) exceeds head width \(d)")
        let (minPos, maxPos) = (Int(positions.scalars.min() ?? 0), Int(positions.scalars.max() ?? 0))
        precondition(minPos >= 0, "rotary: negative position")
        let (cosT, sinT) = rope.tables(positions: minPos...maxPos)
        let half = rope.inverseFrequencies.count
        let pos = positions.scalars
        let out = TensorStorage(count: count)

        /// Applies the rotation (sign +1) or its inverse (sign −1) to one [H, D] token slab.
        @inline(__always)
        func rotate(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, token: Int, sign: Float, accumulate: Bool) {
            let p = (Int(pos[token]) - minPos) * half
            for head in 0..<h {
                let o = head * d
                for i in 0..<half {
                    let c = cosT[p + i], s = sign * sinT[p + i]
                    let x1 = src[o + i], x2 = src[o + i + half]
                    let y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s
                    if accumulate { dst[o + i] += y1; dst[o + i + half] += y2 } else { dst[o + i] = y1; dst[o + i + half] = y2 }
                }
                for j in (2 * half)..<d {
                    if accumulate { dst[o + j] += src[o + j] } else { dst[o + j] = src[o + j] }
                }
            }
        }

        let x = storage.base, slab = h * d
        Parallel.forChunks(b * t, minChunk: 16) { r in
            for token in r { rotate(x + token * slab, out.base + token * slab, token: token, sign: 1, accumulate: false) }
        }
        return Tensor.record("rotary", shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let g = ctx.grad
            // The rotation is orthogonal: its gradient is the inverse rotation.
            Parallel.forChunks(b * t, minChunk: 16) { r in
                for token in r { rotate(g + token * slab, dx + token * slab, token: token, sign: -1, accumulate: true) }
            }
        }
    }
}
