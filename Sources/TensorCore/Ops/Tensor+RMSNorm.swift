import CKernels
import Foundation

/// RMSNorm over the last axis: y = x · rstd · (w + offset), rstd = 1/√(mean(x²) + eps).
/// `weightOffset` is 0 for Llama-style norms and 1 for Gemma's `(1 + w)` norms.
extension Tensor {
    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, weightOffset: Float = 0) -> Tensor {
        let width = x.shape.last ?? 0
        precondition(weight.shape == [width], "rmsNorm: weight \(weight.shape) does not match last axis of \(x.shape)")
        let rows = x.count / max(width, 1)
        let out = TensorStorage(count: x.count)
        let rstd = TensorStorage(count: rows)  // [N] kept for backward
        let px = x.storage.base, pw = weight.storage.base, py = out.base
        Parallel.forChunks(rows, minChunk: max(1, 8192 / max(width, 1))) { r in
            for row in r {
                let xi = px + row * width, yi = py + row * width
                let ms = lk_dot_f32(xi, xi, width) / Float(width)
                let s = 1 / (ms + eps).squareRoot()
                rstd.base[row] = s
                for j in 0..<width { yi[j] = xi[j] * s * (pw[j] + weightOffset) }
            }
        }
        return record("rms_norm", shape: x.shape, storage: out, inputs: [x, weight]) { ctx in
            // Captures the rstd storage itself (not just its pointer) so it outlives forward.
            let g = ctx.grad, pr = rstd.base
            if let dx = ctx.gradient(0) {
                // dx_j = s·w'_j·g_j − s³·x_j/C · Σ_i g_i·w'_i·x_i
                Parallel.forChunks(rows, minChunk: max(1, 8192 / max(width, 1))) { r in
                    for row in r {
                        let o = row * width, s = pr[row]
                        var dot: Float = 0
                        for i in 0..<width { dot += g[o + i] * (pw[i] + weightOffset) * px[o + i] }
                        let c = s * s * s * dot / Float(width)
                        for j in 0..<width { dx[o + j] += s * (pw[j] + weightOffset) * g[o + j] - c * px[o + j] }
                    }
                }
            }
            if let dw = ctx.gradient(1) {
                // Rows sum into one [C] vector: sequential over rows, vectorised over C.
                for row in 0..<rows {
                    let o = row * width, s = pr[row]
                    for j in 0..<width { dw[j] += g[o + j] * px[o + j] * s }
                }
            }
        }
    }
}
