import Foundation
import TensorCore

/// A two-layer Llama-shaped decoder built only from TensorCore ops: the engine's end-to-end
/// fixture (real models live in the Models module). Pre-norm blocks of grouped-query
/// attention with rotary positions and a SwiGLU MLP; the output head is the tied embedding.
public final class TinyTransformer {
    public struct Config: Sendable {
        public var vocab = 16, width = 32, layers = 2, heads = 4, kvHeads = 2, hidden = 64
        public init() {}
        public var headDim: Int { width / heads }
    }

    public let config: Config
    public let embedding: Tensor      // [V, C]
    public let finalNorm: Tensor      // [C]
    public let layers: [Layer]
    let rope: RotaryEmbedding

    public struct Layer {
        public let attnNorm: Tensor   // [C]
        public let wq: Tensor         // [H·D, C]
        public let wk: Tensor         // [G·D, C]
        public let wv: Tensor         // [G·D, C]
        public let wo: Tensor         // [C, H·D]
        public let mlpNorm: Tensor    // [C]
        public let wGate: Tensor      // [F, C]
        public let wUp: Tensor        // [F, C]
        public let wDown: Tensor      // [C, F]
    }

    public init(config: Config = Config(), seed: UInt64) {
        self.config = config
        var rng = RandomGenerator(seed: seed)
        func linear(_ out: Int, _ inp: Int) -> Tensor {
            Tensor(normal: [out, inp], std: 1 / Float(inp).squareRoot(), rng: &rng, requiresGrad: true)
        }
        func ones(_ n: Int) -> Tensor { Tensor(shape: [n], scalars: [Float](repeating: 1, count: n), requiresGrad: true) }
        let c = config.width, hd = config.headDim
        embedding = Tensor(normal: [config.vocab, c], std: 0.5, rng: &rng, requiresGrad: true)
        finalNorm = ones(c)
        layers = (0..<config.layers).map { _ in
            Layer(attnNorm: ones(c), wq: linear(config.heads * hd, c), wk: linear(config.kvHeads * hd, c),
                  wv: linear(config.kvHeads * hd, c), wo: linear(c, config.heads * hd), mlpNorm: ones(c),
                  wGate: linear(config.hidden, c), wUp: linear(config.hidden, c), wDown: linear(c, config.hidden))
        }
        rope = RotaryEmbedding(rotaryDim: hd, base: 10_000)
    }

    public var parameters: [Tensor] {
        [embedding, finalNorm] + layers.flatMap { [$0.attnNorm, $0.wq, $0.wk, $0.wv, $0.wo, $0.mlpNorm, $0.wGate, $0.wUp, $0.wDown] }
    }

    /// Mean cross-entropy over targets ≥ 0. ids, targets, positions, segments: [B, T].
    public func loss(ids: IntTensor, targets: IntTensor, positions: IntTensor, segments: IntTensor? = nil) -> Tensor {
        let (b, t) = (ids.shape[0], ids.shape[1])
        let (c, hd) = (config.width, config.headDim)
        var x = Tensor.embedding(embedding, ids: ids)  // [B, T, C]
        for layer in layers {
            let h = Tensor.rmsNorm(x, weight: layer.attnNorm, eps: 1e-5)
            let q = h.matmul(layer.wq, transposeB: true).reshaped([b, t, config.heads, hd]).rotary(rope, positions: positions)
            let k = h.matmul(layer.wk, transposeB: true).reshaped([b, t, config.kvHeads, hd]).rotary(rope, positions: positions)
            let v = h.matmul(layer.wv, transposeB: true).reshaped([b, t, config.kvHeads, hd])
            let attn = Tensor.causalAttention(q: q, k: k, v: v, segments: segments,
                                              options: AttentionOptions(scale: 1 / Float(hd).squareRoot()))
            x = x + attn.reshaped([b, t, config.heads * hd]).matmul(layer.wo, transposeB: true)
            let m = Tensor.rmsNorm(x, weight: layer.mlpNorm, eps: 1e-5)
            let act = Tensor.swiglu(gate: m.matmul(layer.wGate, transposeB: true), up: m.matmul(layer.wUp, transposeB: true))
            x = x + act.matmul(layer.wDown, transposeB: true)
        }
        let out = Tensor.rmsNorm(x, weight: finalNorm, eps: 1e-5).reshaped([b * t, c])
        return Tensor.linearCrossEntropy(hidden: out, weight: embedding,
                                         targets: IntTensor(shape: [b * t], scalars: targets.scalars))
    }
}

/// Plain Adam for engine tests (the Training module has the real AdamW).
public struct TestAdam {
    var m: [ObjectIdentifier: [Float]] = [:], v: [ObjectIdentifier: [Float]] = [:]
    var step = 0
    let lr: Float
    public init(lr: Float) { self.lr = lr }

    public mutating func update(_ parameters: [Tensor], _ grads: GradientStore) {
        step += 1
        let (b1, b2): (Float, Float) = (0.9, 0.999)
        let c1 = 1 - Foundation.pow(b1, Float(step)), c2 = 1 - Foundation.pow(b2, Float(step))
        for p in parameters {
            guard let g = grads[p]?.scalars else { continue }
            let key = ObjectIdentifier(p)
            var mk = m[key] ?? [Float](repeating: 0, count: p.count), vk = v[key] ?? [Float](repeating: 0, count: p.count)
            p.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count {
                    mk[i] = b1 * mk[i] + (1 - b1) * g[i]
                    vk[i] = b2 * vk[i] + (1 - b2) * g[i] * g[i]
                    w[i] -= lr * (mk[i] / c1) / ((vk[i] / c2).squareRoot() + 1e-8)
                }
            }
            m[key] = mk
            v[key] = vk
        }
    }
}
