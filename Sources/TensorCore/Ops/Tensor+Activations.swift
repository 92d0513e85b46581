import CKernels
import Foundation

/// SiLU, GELU (tanh approximation) and SwiGLU, forward and backward, over the C kernels.
extension Tensor {
    /// Applies `kernel` elementwise in parallel chunks.
    private func mapKernel(_ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> TensorStorage {
        let out = TensorStorage(count: count)
        let src = storage.base, dst = out.base
        Parallel.forChunks(count, minChunk: 1 << 14) { r in kernel(src + r.lowerBound, dst + r.lowerBound, r.count) }
        return out
    }

    /// An elementwise activation from a C kernel pair: `forward(x, out, n)` and the
    /// accumulating `backward(x, dout, dx, n)`.
    private func activation(_ op: String,
                            forward: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
                            backward: @escaping (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = mapKernel(forward)
        let x = storage.base, n = count
        return Tensor.record(op, shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let g = ctx.grad
            Parallel.forChunks(n, minChunk: 1 << 14) { r in
                backward(x + r.lowerBound, g + r.lowerBound, dx + r.lowerBound, r.count)
            }
        }
    }

    /// x · sigmoid(x).
    public func silu() -> Tensor {
        activation("silu", forward: { lk_silu_f32($0, $1, $2) }, backward: { lk_silu_backward_f32($0, $1, $2, $3) })
    }

    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as Gemma and GPT-2 use it.
    public func geluTanh() -> Tensor {
        activation("gelu_tanh", forward: { lk_gelu_tanh_f32($0, $1, $2) }, backward: { lk_gelu_tanh_backward_f32($0, $1, $2, $3) })
    }

    /// tanh, elementwise (logit soft-capping: cap · tanh(x / cap)).
    public func tanh() -> Tensor {
        let out = mapKernel { src, dst, n in for i in 0..<n { dst[i] = Foundation.tanh(src[i]) } }
        let n = count
        return Tensor.record("tanh", shape: shape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let y = ctx.output, g = ctx.grad
            for i in 0..<n { dx[i] += g[i] * (1 - y[i] * y[i]) }
        }
    }

    /// SwiGLU, fused: silu(gate) · up. The two inputs have the same shape.
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let n = gate.count
        let out = TensorStorage(count: n)
        let pg = gate.storage.base, pu = up.storage.base, po = out.base
        Parallel.forChunks(n, minChunk: 1 << 14) { r in
            lk_swiglu_f32(pg + r.lowerBound, pu + r.lowerBound, po + r.lowerBound, r.count)
        }
        return record("swiglu", shape: gate.shape, storage: out, inputs: [gate, up]) { ctx in
            let dg = ctx.gradient(0), du = ctx.gradient(1)
            guard dg != nil || du != nil else { return }
            let g = ctx.grad
            Parallel.forChunks(n, minChunk: 1 << 14) { r in
                let o = r.lowerBound
                lk_swiglu_backward_f32(pg + o, pu + o, g + o, dg.map { $0 + o }, du.map { $0 + o }, r.count)
            }
        }
    }

    /// SwiGLU over gate and up side by side: x [..., 2F] (gate in the first F columns of each
    /// row, up in the last F) → silu(gate) · up [..., F]. Gate and up projected as one op
    /// (or Phi-3's fused gate_up) are read in place instead of being sliced into copies.
    public static func swiglu(stacked x: Tensor) -> Tensor {
        let width = x.shape.last ?? 0
        precondition(width % 2 == 0, "swiglu: \(x.shape) does not end in gate and up of equal width")
        let f = width / 2, rows = x.count / max(width, 1)
        let out = TensorStorage(count: rows * f)  // [N, F]
        let px = x.storage.base, po = out.base
        Parallel.forChunks(rows, minChunk: max(1, (1 << 14) / max(f, 1))) { r in
            for row in r { lk_swiglu_f32(px + row * width, px + row * width + f, po + row * f, f) }
        }
        return record("swiglu", shape: Array(x.shape.dropLast()) + [f], storage: out, inputs: [x]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let g = ctx.grad
            Parallel.forChunks(rows, minChunk: max(1, (1 << 14) / max(f, 1))) { r in
                for row in r {
                    let (gate, up, d) = (px + row * width, px + row * width + f, dx + row * width)
                    lk_swiglu_backward_f32(gate, up, g + row * f, d, d + f, f)
                }
            }
        }
    }
}
