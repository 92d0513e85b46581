import Quantization
import TensorCore

/// The Llama-family decoder, configured by `ModelConfig`'s named variations.
///
/// Projections are `LinearLayer`s built over encoded weights; the model never decodes a whole
/// weight and knows nothing of LoRA (which swaps layers through `replaceLinears`).
public final class DecoderModel {
    public let config: ModelConfig
    public let embedding: any QuantizedMatrix  // [V, C]
    public private(set) var layers: [DecoderLayer]
    public let finalNorm: Tensor                // [C]
    public private(set) var head: any LinearLayer  // C → V (the embedding itself when tied)

    public init(config: ModelConfig, weights: any WeightSource) throws(ModelError) {
        try config.validate()
        self.config = config
        let (c, v) = (config.hiddenSize, config.vocabSize)
        embedding = try Self.checked(weights.matrix(WeightNames.embedding), WeightNames.embedding, [v, c], weights)
        finalNorm = try Self.checked(weights.vector(WeightNames.finalNorm), WeightNames.finalNorm, [c], weights)
        if !config.tieWordEmbeddings || weights.contains(WeightNames.outputHead) {
            head = QuantizedLinear(weight: try Self.checked(weights.matrix(WeightNames.outputHead), WeightNames.outputHead, [v, c], weights))
        } else {
            head = QuantizedLinear(weight: embedding)
        }
        layers = []
        for index in 0..<config.layerCount {
            layers.append(try DecoderLayer(index: index, config: config, weights: weights))
        }
    }

    /// Final hidden states [B, T, C] for token ids [B, T]. Positions restart per packed
    /// sequence; `segments` keeps packed sequences from attending to each other. `options` say
    /// how the pass runs (compute dtype, checkpointing); they hold for its backward too.
    public func hiddenStates(ids: IntTensor, positions: IntTensor, segments: IntTensor? = nil,
                             options: ExecutionOptions = .inference) -> Tensor {
        precondition(ids.shape.count == 2, "hiddenStates: ids must be [B, T], got \(ids.shape)")
        let budget = options.gradientCheckpointing && options.checkpointKeepBytes > 0 ? KeptProducts.Budget(bytes: options.checkpointKeepBytes) : nil
        let x = withComputeDType(options.computeDType) {
            KeptProducts.$budget.withValue(budget) { decoderLayers(embed(ids), positions: positions, segments: segments, options: options) }
        }
        return Tensor.rmsNorm(x, weight: finalNorm, eps: config.rmsNormEps, weightOffset: config.normWeightOffset)
    }

    /// x [B, T, C] through every decoder layer, each checkpointed when `options` say so. A
    /// checkpointed layer is recomputed during backward, outside this call: it re-enters the
    /// same compute dtype there.
    private func decoderLayers(_ input: Tensor, positions: IntTensor, segments: IntTensor?, options: ExecutionOptions) -> Tensor {
        var x = input
        let dtype = options.computeDType
        for layer in layers {
            let config = config
            guard options.gradientCheckpointing else {
                x = layer.forward(x, config: config, positions: positions, segments: segments)
                continue
            }
            let linears = layer.namedLinears.map(\.layer)
            let states = linears.map(\.randomState)  // before the first run: replayed in backward
            x = Tensor.checkpointed(x, parameters: linears.flatMap(\.trainableParameters),
                                    rewind: { for (linear, state) in zip(linears, states) { linear.randomState = state } },
                                    { input in
                                        withComputeDType(dtype) { layer.forward(input, config: config, positions: positions, segments: segments) }
                                    })
        }
        return x
    }

    /// Next-token logits [B, T, V] (soft-capped where the family does so).
    public func logits(ids: IntTensor, positions: IntTensor, segments: IntTensor? = nil, options: ExecutionOptions = .inference) -> Tensor {
        let hidden = hiddenStates(ids: ids, positions: positions, segments: segments, options: options)
        let logits = withComputeDType(options.computeDType) { head.forward(hidden) }
        guard let cap = config.finalLogitSoftcap else { return logits }
        return logits.scaled(by: 1 / cap).tanh().scaled(by: cap)
    }

    /// Token embeddings [B, T, C], decoded row by row from the encoded table (frozen).
    func embed(_ ids: IntTensor) -> Tensor {
        let c = config.hiddenSize
        let out = TensorStorage(count: ids.count * c)
        for (i, id) in ids.scalars.enumerated() {
            precondition(id >= 0 && Int(id) < config.vocabSize, "token id \(id) outside the vocabulary of \(config.vocabSize)")
            embedding.decodeRows(Int(id)..<(Int(id) + 1), into: out.base + i * c)
        }
        if config.scaleEmbeddings {
            let scale = Float(c).squareRoot()
            for i in 0..<out.count { out.base[i] *= scale }
        }
        return Tensor(shape: ids.shape + [c], storage: out)
    }

    /// Replaces projections by name (LoRA wraps them); `transform` gets the Hugging Face
    /// module name (`model.layers.0.self_attn.q_proj`) and the current layer.
    public func replaceLinears(_ transform: (String, any LinearLayer) throws -> any LinearLayer) rethrows {
        for i in layers.indices { try layers[i].replaceLinears(transform) }
        if !config.tieWordEmbeddings { head = try transform("lm_head", head) }
    }

    /// Every projection with its Hugging Face module name.
    public var namedLinears: [(name: String, layer: any LinearLayer)] {
        layers.flatMap(\.namedLinears) + (config.tieWordEmbeddings ? [] : [("lm_head", head)])
    }

    static func checked(_ m: any QuantizedMatrix, _ name: String, _ shape: [Int], _ weights: any WeightSource) throws(ModelError) -> any QuantizedMatrix {
        guard [m.rows, m.columns] == shape else {
            throw .shapeMismatch(tensor: name, expected: shape, found: [m.rows, m.columns], source: weights.sourceName)
        }
        return m
    }

    static func checked(_ t: Tensor, _ name: String, _ shape: [Int], _ weights: any WeightSource) throws(ModelError) -> Tensor {
        guard t.shape == shape else {
            throw .shapeMismatch(tensor: name, expected: shape, found: t.shape, source: weights.sourceName)
        }
        return t
    }
}
