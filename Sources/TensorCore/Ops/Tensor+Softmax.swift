import CKernels

/// Softmax over the last axis, forward and backward.
extension Tensor {
    public func softmax() -> Tensor {
        precondition(rank >= 1, "softmax: needs rank ≥ 1")
        let width = shape[rank - 1], rows = count / max(width, 1)
        let out = TensorStorage(count: count)
        let x = storage.base, y = out.base
        Parallel.forChunks(rows, minChunk: max(1, 4096 / max(width, 1))) { r in
            for row in r {
                let xi = x + row * width, yi = y + row * width
                let m = lk_max_f32(xi, width)
                let s = lk_exp_shift_sum_f32(xi, m, yi, width)
                let inv = 1 / s
                for j in 0..<width { yi[j] *= inv }
            }
        }
        return Tensor.record("softmax", shape: shape, storage: out, inputs: [self]) { ctx in
            // dx = y ⊙ (g − Σ g⊙y), row by row.
            guard let dx = ctx.gradient(0) else { return }
            let y = ctx.output, g = ctx.grad
            Parallel.forChunks(rows, minChunk: max(1, 4096 / max(width, 1))) { r in
                for row in r {
                    let o = row * width
                    let dot = lk_dot_f32(g + o, y + o, width)
                    for j in 0..<width { dx[o + j] += y[o + j] * (g[o + j] - dot) }
                }
            }
        }
    }
}
