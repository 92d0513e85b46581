import Quantization
import TensorCore

/// Model shapes for scaling measurements: the compute and memory of a real model of that shape,
/// with no download. Only the shapes are real; the weights are random.
public enum SyntheticShape: String, Sendable, CaseIterable {
    /// Llama 3.2 1B: 16 layers, C 2048, grouped KV (8 of 32 heads), tied 128k vocabulary.
    case llama1b = "llama-1b"
    /// Llama 2 7B: 32 layers, C 4096, full KV heads, separate head over a 32k vocabulary.
    case llama7b = "llama-7b-shape"

    public var config: ModelConfig {
        switch self {
        case .llama1b:
            var c = ModelConfig(family: .llama, vocabSize: 128_256, hiddenSize: 2048, layerCount: 16, headCount: 32, kvHeadCount: 8,
                                intermediateSize: 8192, rmsNormEps: 1e-5, ropeTheta: 500_000, maxPositions: 131_072, tieWordEmbeddings: true)
            c.ropeScaling = .llama3(factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192)
            return c
        case .llama7b:
            return ModelConfig(family: .llama, vocabSize: 32_000, hiddenSize: 4096, layerCount: 32, headCount: 32, kvHeadCount: 32,
                               intermediateSize: 11_008, rmsNormEps: 1e-5, ropeTheta: 10_000, maxPositions: 4096, tieWordEmbeddings: false)
        }
    }
}

/// Random weights already in NF4 with double quantization (the layout QLoRA trains over), made
/// directly as codes and scales: a 7B shape never exists in Float32, so memory at rest is
/// what training over a real NF4 base holds. Norm scales are 1. Deterministic per tensor name.
public struct SyntheticWeightSource: WeightSource {
    public let config: ModelConfig
    public let seed: UInt64
    public let sourceName: String

    public init(shape: SyntheticShape, seed: UInt64 = 1) {
        config = shape.config
        self.seed = seed
        sourceName = "synthetic \(shape.rawValue)"
    }

    public func contains(_ name: String) -> Bool {
        matrixShape(name) != nil || vectorLength(name) != nil
    }

    public func matrix(_ name: String) throws(ModelError) -> any QuantizedMatrix {
        guard let (rows, columns) = matrixShape(name) else { throw .missingTensor(name, source: sourceName) }
        var rng = RandomGenerator(seed: seed ^ Self.stableHash(name))
        let n = rows * columns, blocks = (n + NF4Matrix.blockSize - 1) / NF4Matrix.blockSize
        let packed = Self.randomBytes((n + 1) / 2, rng: &rng)
        let codes = Self.randomBytes(blocks, rng: &rng)
        // Block absmax = map value · 0.01 + 0.03 ∈ [0.02, 0.04]: weights of std ≈ 0.018, close
        // to 1/√C for these widths, so activations stay in range through every layer.
        let second = [Float](repeating: 0.01, count: (blocks + NF4Matrix.scaleBlockSize - 1) / NF4Matrix.scaleBlockSize)
        return NF4Matrix(rows: rows, columns: columns, packed: packed, scales: .doubleQuantized(codes: codes, scales: second, offset: 0.03))
    }

    public func vector(_ name: String) throws(ModelError) -> Tensor {
        guard let length = vectorLength(name) else { throw .missingTensor(name, source: sourceName) }
        return Tensor(shape: [length], scalars: [Float](repeating: 1, count: length))
    }

    /// [out, in] of a projection, embedding or head.
    public func matrixShape(_ name: String) -> (Int, Int)? {
        let c = config, (q, kv) = (config.headCount * config.headDim, config.kvHeadCount * config.headDim)
        if name == WeightNames.embedding || (name == WeightNames.outputHead && !c.tieWordEmbeddings) { return (c.vocabSize, c.hiddenSize) }
        guard let suffix = layerSuffix(name) else { return nil }
        typealias S = WeightNames.Suffix
        switch suffix {
        case S.q + ".weight": return (q, c.hiddenSize)
        case S.k + ".weight", S.v + ".weight": return (kv, c.hiddenSize)
        case S.o + ".weight": return (c.hiddenSize, q)
        case S.gate + ".weight", S.up + ".weight": return (c.intermediateSize, c.hiddenSize)
        case S.down + ".weight": return (c.hiddenSize, c.intermediateSize)
        default: return nil
        }
    }

    func vectorLength(_ name: String) -> Int? {
        if name == WeightNames.finalNorm { return config.hiddenSize }
        guard let suffix = layerSuffix(name) else { return nil }
        return [WeightNames.Suffix.attentionNorm, WeightNames.Suffix.postAttentionNorm].contains(String(suffix)) ? config.hiddenSize : nil
    }

    /// `self_attn.q_proj.weight` for `model.layers.3.self_attn.q_proj.weight` (a layer that exists).
    func layerSuffix(_ name: String) -> Substring? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]), (0..<config.layerCount).contains(index) else { return nil }
        return rest[rest.index(after: dot)...]
    }

    static func randomBytes(_ count: Int, rng: inout RandomGenerator) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var i = 0
            while i < count {
                var word = rng.next()
                for _ in 0..<min(8, count - i) { buffer[i] = UInt8(truncatingIfNeeded: word); word >>= 8; i += 1 }
            }
            initialized = count
        }
    }

    /// FNV-1a of the name: the same tensor gets the same weights in every process.
    static func stableHash(_ name: String) -> UInt64 {
        name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }
}
