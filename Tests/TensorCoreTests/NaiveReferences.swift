import Foundation
import TensorCore

/// Obviously-right Double-precision versions of the fused ops, for forward comparisons.
enum Naive {
    static func rmsNorm(_ x: [Float], _ w: [Float], width: Int, eps: Double, offset: Double) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / width) {
            var ms = 0.0
            for j in 0..<width { ms += Double(x[row * width + j]) * Double(x[row * width + j]) }
            let s = 1 / (ms / Double(width) + eps).squareRoot()
            for j in 0..<width { out[row * width + j] = Float(Double(x[row * width + j]) * s * (Double(w[j]) + offset)) }
        }
        return out
    }

    static func softmax(_ x: [Float], width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for row in 0..<(x.count / width) {
            let r = (0..<width).map { Double(x[row * width + $0]) }
            let m = r.max() ?? 0
            let e = r.map { exp($0 - m) }
            let s = e.reduce(0, +)
            for j in 0..<width { out[row * width + j] = Float(e[j] / s) }
        }
        return out
    }

    /// q [B,T,H,D], k/v [B,T,G,D]: explicit T×T scores with an explicit mask.
    static func attention(q: Tensor, k: Tensor, v: Tensor, segments: [Int32]?, scale: Double,
                          window: Int?, softcap: Double?) -> [Float] {
        let (b, t, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let g = k.shape[2]
        let (qs, ks, vs) = (q.scalars, k.scalars, v.scalars)
        var out = [Float](repeating: 0, count: q.count)
        for bi in 0..<b {
            for hi in 0..<h {
                let gi = hi / (h / g)
                for i in 0..<t {
                    var scores = [Double](repeating: -.infinity, count: t)
                    for j in 0...i {
                        // Same contiguous segment: no boundary between j and i.
                        if let segments, (j..<i).contains(where: { segments[bi * t + $0] != segments[bi * t + $0 + 1] }) { continue }
                        if let window, i - j >= window { continue }
                        var s = 0.0
                        for c in 0..<d { s += Double(qs[((bi * t + i) * h + hi) * d + c]) * Double(ks[((bi * t + j) * g + gi) * d + c]) }
                        s *= scale
                        if let softcap { s = softcap * tanh(s / softcap) }
                        scores[j] = s
                    }
                    let m = scores.max() ?? 0
                    let e = scores.map { $0 == -.infinity ? 0 : exp($0 - m) }
                    let z = e.reduce(0, +)
                    for c in 0..<d {
                        var acc = 0.0
                        for j in 0..<t { acc += e[j] / z * Double(vs[((bi * t + j) * g + gi) * d + c]) }
                        out[((bi * t + i) * h + hi) * d + c] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    /// Mean over targets ≥ 0 of logsumexp(h·Wᵀ) − logit[target].
    /// With `softcap`, logits are cap·tanh(logit/cap) first (Gemma 2).
    static func crossEntropy(hidden: Tensor, weight: Tensor, targets: [Int32], softcap: Double? = nil) -> Double {
        let (n, c, v) = (hidden.shape[0], hidden.shape[1], weight.shape[0])
        let (hs, ws) = (hidden.scalars, weight.scalars)
        var total = 0.0, count = 0
        for r in 0..<n where targets[r] >= 0 {
            let raw = (0..<v).map { col in (0..<c).reduce(0.0) { $0 + Double(hs[r * c + $1]) * Double(ws[col * c + $1]) } }
            let logits = softcap.map { cap in raw.map { cap * tanh($0 / cap) } } ?? raw
            let m = logits.max() ?? 0
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            total += lse - logits[Int(targets[r])]
            count += 1
        }
        return count == 0 ? 0 : total / Double(count)
    }

    static func rotary(_ x: Tensor, positions: [Int32], inverseFrequencies: [Float]) -> [Float] {
        let (b, t, h, d) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let half = inverseFrequencies.count
        var out = x.scalars
        for token in 0..<(b * t) {
            for head in 0..<h {
                let o = (token * h + head) * d
                for i in 0..<half {
                    let angle = Double(Float(positions[token]) * inverseFrequencies[i])
                    let (x1, x2) = (Double(out[o + i]), Double(out[o + i + half]))
                    out[o + i] = Float(x1 * cos(angle) - x2 * sin(angle))
                    out[o + i + half] = Float(x2 * cos(angle) + x1 * sin(angle))
                }
            }
        }
        return out
    }
}
