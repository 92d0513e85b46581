import Quantization
import TensorCore

/// One pre-norm block: attention then MLP, each added to the residual stream.
public struct DecoderLayer {
    public let index: Int
    let attentionNorm: Tensor            // [C]
    let mlpNorm: Tensor                  // [C]
    let postAttentionNorm: Tensor?       // [C] Gemma 2/3
    let postMLPNorm: Tensor?             // [C] Gemma 2/3
    let qNorm: Tensor?, kNorm: Tensor?   // [D] Qwen3, Gemma 3
    /// q, k, v (or Phi-3's fused qkv) and o, keyed by their module-name suffix.
    private(set) var projections: [String: any LinearLayer]
    let window: Int?
    /// This layer's rotary frequencies (Gemma 3's windowed layers have their own base).
    let rope: RotaryEmbedding

    init(index: Int, config: ModelConfig, weights: any WeightSource) throws(ModelError) {
        self.index = index
        let (c, d, f) = (config.hiddenSize, config.headDim, config.intermediateSize)
        let (hd, gd) = (config.headCount * d, config.kvHeadCount * d)
        typealias S = WeightNames.Suffix
        func name(_ suffix: String) -> String { WeightNames.layer(index, suffix) }
        func vector(_ suffix: String, _ n: Int) throws(ModelError) -> Tensor {
            try DecoderModel.checked(weights.vector(name(suffix)), name(suffix), [n], weights)
        }
        func linear(_ suffix: String, out: Int, in input: Int, bias: Bool = false) throws(ModelError) -> any LinearLayer {
            let w = try DecoderModel.checked(weights.matrix(name(suffix + ".weight")), name(suffix + ".weight"), [out, input], weights)
            let b = bias ? try vector(suffix + ".bias", out) : nil
            return QuantizedLinear(weight: w, bias: b)
        }

        attentionNorm = try vector(S.attentionNorm, c)
        if config.sandwichNorms {
            postAttentionNorm = try vector(S.postAttentionNorm, c)
            mlpNorm = try vector(S.preFeedforwardNorm, c)
            postMLPNorm = try vector(S.postFeedforwardNorm, c)
        } else {
            postAttentionNorm = nil
            mlpNorm = try vector(S.postAttentionNorm, c)
            postMLPNorm = nil
        }
        qNorm = config.qkNorm ? try vector(S.qNorm, d) : nil
        kNorm = config.qkNorm ? try vector(S.kNorm, d) : nil

        var p: [String: any LinearLayer] = [:]
        if config.fusedQKV {
            p[S.qkv] = try linear(S.qkv, out: hd + 2 * gd, in: c, bias: config.attentionBias)
        } else {
            p[S.q] = try linear(S.q, out: hd, in: c, bias: config.attentionBias)
            p[S.k] = try linear(S.k, out: gd, in: c, bias: config.attentionBias)
            p[S.v] = try linear(S.v, out: gd, in: c, bias: config.attentionBias)
        }
        p[S.o] = try linear(S.o, out: c, in: hd)
        if config.fusedGateUp {
            p[S.gateUp] = try linear(S.gateUp, out: 2 * f, in: c)
        } else {
            p[S.gate] = try linear(S.gate, out: f, in: c)
            p[S.up] = try linear(S.up, out: f, in: c)
        }
        p[S.down] = try linear(S.down, out: c, in: f)
        projections = p
        window = config.window(ofLayer: index)
        rope = config.rotaryEmbedding(ofLayer: index)
    }

    func projection(_ suffix: String) -> any LinearLayer {
        guard let layer = projections[suffix] else { preconditionFailure("layer \(index) has no projection \(suffix)") }
        return layer
    }

    /// x [B, T, C] → [B, T, C]. With a cache (generation, B = 1), the new keys and values are
    /// stored after the cached positions and attention runs over all of them.
    func forward(_ x: Tensor, config: ModelConfig, positions: IntTensor, segments: IntTensor?,
                 cache: KVCache? = nil) -> Tensor {
        typealias S = WeightNames.Suffix
        let (b, t) = (x.shape[0], x.shape[1])
        let (h, g, d) = (config.headCount, config.kvHeadCount, config.headDim)
        let (eps, offset) = (config.rmsNormEps, config.normWeightOffset)

        let normed = Tensor.rmsNorm(x, weight: attentionNorm, eps: eps, weightOffset: offset)
        var q: Tensor, k: Tensor, v: Tensor
        if config.fusedQKV {
            let qkv = projection(S.qkv).forward(normed)  // [B, T, (H + 2G)·D]
            q = qkv.slice(axis: 2, 0..<(h * d))
            k = qkv.slice(axis: 2, (h * d)..<((h + g) * d))
            v = qkv.slice(axis: 2, ((h + g) * d)..<((h + 2 * g) * d))
        } else {  // one op for the three when they can share it
            let qkv = Tensor.project(normed, through: [projection(S.q), projection(S.k), projection(S.v)])
            (q, k, v) = (qkv[0], qkv[1], qkv[2])
        }
        q = q.reshaped([b, t, h, d])
        k = k.reshaped([b, t, g, d])
        v = v.reshaped([b, t, g, d])
        if let qNorm, let kNorm {
            q = Tensor.rmsNorm(q, weight: qNorm, eps: eps, weightOffset: offset)
            k = Tensor.rmsNorm(k, weight: kNorm, eps: eps, weightOffset: offset)
        }
        q = q.rotary(rope, positions: positions)
        k = k.rotary(rope, positions: positions)
        let options = AttentionOptions(scale: config.attentionScale, window: window, softcap: config.attentionSoftcap)
        let attended = cache.map { $0.attend(layer: index, q: q, k: k, v: v, options: options) }
            ?? Tensor.causalAttention(q: q, k: k, v: v, segments: segments, options: options)  // [B, T, H, D]
        var attnOut = projection(S.o).forward(attended.reshaped([b, t, h * d]))
        if let postAttentionNorm { attnOut = Tensor.rmsNorm(attnOut, weight: postAttentionNorm, eps: eps, weightOffset: offset) }
        let residual = x + attnOut

        let normed2 = Tensor.rmsNorm(residual, weight: mlpNorm, eps: eps, weightOffset: offset)
        let gateUp = config.fusedGateUp  // [B, T, 2F], gate then up
            ? projection(S.gateUp).forward(normed2)
            : Tensor.projectStacked(normed2, through: [projection(S.gate), projection(S.up)])
        let activated: Tensor  // [B, T, F]
        if config.activation == .silu {
            activated = Tensor.swiglu(stacked: gateUp)
        } else {
            let f = config.intermediateSize
            activated = gateUp.slice(axis: 2, 0..<f).geluTanh() * gateUp.slice(axis: 2, f..<(2 * f))
        }
        var mlpOut = projection(S.down).forward(activated)
        if let postMLPNorm { mlpOut = Tensor.rmsNorm(mlpOut, weight: postMLPNorm, eps: eps, weightOffset: offset) }
        return residual + mlpOut
    }

    mutating func replaceLinears(_ transform: (String, any LinearLayer) throws -> any LinearLayer) rethrows {
        for key in projections.keys.sorted() {
            if let layer = projections[key] { projections[key] = try transform(WeightNames.layer(index, key), layer) }
        }
    }

    var namedLinears: [(name: String, layer: any LinearLayer)] {
        projections.keys.sorted().compactMap { key in projections[key].map { (WeightNames.layer(index, key), $0) } }
    }
}
