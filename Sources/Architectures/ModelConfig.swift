import Foundation
import TensorCore

/// Everything that distinguishes one Llama-family decoder from another. One decoder reads
/// these named variations; there is no per-model copy of the forward pass.
public struct ModelConfig: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, phi3

        /// Gemma's variations: `1 + w` norms, √C-scaled embeddings, GeGLU.
        public var isGemma: Bool { self == .gemma || self == .gemma2 || self == .gemma3 }
    }

    public enum Activation: String, Sendable { case silu, geluTanh }

    /// Which layers use the sliding window (Mistral: all; Gemma 2: every even layer; Gemma 3:
    /// five of every six; newer configs list each layer's kind in `layer_types`).
    public enum WindowPattern: Sendable, Equatable { case none, all, evenLayers, layers([Bool]) }

    public enum RopeScaling: Sendable, Equatable {
        /// Positions divided by `factor`.
        case linear(factor: Float)
        /// Llama 3.x: long wavelengths slowed by `factor`, a smooth blend in between.
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
        /// Inverse frequency i divided by `factors[i]`: how llama.cpp's converter stores Llama 3.x
        /// scaling in GGUF (a `rope_freqs` tensor instead of the four parameters).
        case frequencyFactors([Float])
    }

    public var family: Family
    public var vocabSize: Int
    public var hiddenSize: Int          // C
    public var layerCount: Int
    public var headCount: Int           // H
    public var kvHeadCount: Int         // G
    public var headDim: Int             // D
    public var intermediateSize: Int    // F
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling?
    public var partialRotaryFactor: Float = 1
    public var maxPositions: Int
    public var tieWordEmbeddings: Bool

    // Named variations.
    public var attentionBias = false          // Qwen2: q/k/v biases
    public var qkNorm = false                 // Qwen3: RMSNorm over each head of q and k
    public var normWeightOffset: Float = 0    // Gemma: norms scale by (1 + w)
    public var scaleEmbeddings = false        // Gemma: embeddings × √C
    public var activation = Activation.silu   // Gemma: GeGLU
    public var sandwichNorms = false          // Gemma 2: norms after attention and MLP too
    public var attentionSoftcap: Float?       // Gemma 2
    public var finalLogitSoftcap: Float?      // Gemma 2
    public var slidingWindow: Int?
    public var windowPattern = WindowPattern.none
    public var queryPreAttentionScalar: Float?  // Gemma 2/3: scores scaled by this^-½, not D^-½
    /// Gemma 3: windowed layers rotate with their own base (10 000) and without `ropeScaling`,
    /// which applies to the global layers only.
    public var slidingRopeTheta: Float?
    public var fusedQKV = false               // Phi-3: one qkv_proj
    public var fusedGateUp = false            // Phi-3: one gate_up_proj

    public init(family: Family, vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int,
                headDim: Int? = nil, intermediateSize: Int, rmsNormEps: Float, ropeTheta: Float,
                maxPositions: Int, tieWordEmbeddings: Bool) {
        self.family = family
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? hiddenSize / max(headCount, 1)
        self.intermediateSize = intermediateSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositions = maxPositions
        self.tieWordEmbeddings = tieWordEmbeddings
    }

    /// Multiplier of q·k.
    public var attentionScale: Float {
        1 / (queryPreAttentionScalar ?? Float(headDim)).squareRoot()
    }

    /// The sliding window of layer `index`, if it has one.
    public func window(ofLayer index: Int) -> Int? {
        switch windowPattern {
        case .none: return nil
        case .all: return slidingWindow
        case .evenLayers: return index % 2 == 0 ? slidingWindow : nil
        case .layers(let sliding): return index < sliding.count && sliding[index] ? slidingWindow : nil
        }
    }

    /// Rotary dimensions per head (even).
    var rotaryDimensions: Int {
        let rotaryDim = Int(Float(headDim) * partialRotaryFactor)
        return rotaryDim - rotaryDim % 2
    }

    /// The rotary frequencies of layer `index`: Gemma 3's windowed layers have their own.
    public func rotaryEmbedding(ofLayer index: Int) -> RotaryEmbedding {
        if let slidingRopeTheta, window(ofLayer: index) != nil {
            return RotaryEmbedding(rotaryDim: rotaryDimensions, base: slidingRopeTheta)
        }
        return rotaryEmbedding
    }

    /// Rotary frequencies with this model's scaling applied (computed in Float32 like transformers).
    public var rotaryEmbedding: RotaryEmbedding {
        let base = RotaryEmbedding(rotaryDim: rotaryDimensions, base: ropeTheta)
        switch ropeScaling {
        case nil:
            return base
        case .linear(let factor):
            return RotaryEmbedding(inverseFrequencies: base.inverseFrequencies.map { $0 / factor })
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Float(original) / low, highWavelength = Float(original) / high
            return RotaryEmbedding(inverseFrequencies: base.inverseFrequencies.map { f in
                let wavelength = 2 * Float.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            })
        case .frequencyFactors(let factors):
            return RotaryEmbedding(inverseFrequencies: zip(base.inverseFrequencies, factors).map { $0 / $1 })
        }
    }

    /// Checks the sizes a forward pass relies on; a file that violates them is rejected.
    public func validate() throws(ModelError) {
        func fail(_ why: String) -> ModelError { .invalidConfig(why) }
        guard vocabSize > 0, hiddenSize > 0, layerCount > 0, headCount > 0, kvHeadCount > 0, headDim > 0, intermediateSize > 0 else {
            throw fail("sizes must be positive (vocab \(vocabSize), hidden \(hiddenSize), layers \(layerCount), heads \(headCount)/\(kvHeadCount), head dim \(headDim), intermediate \(intermediateSize))")
        }
        guard headCount % kvHeadCount == 0 else { throw fail("\(headCount) attention heads are not a multiple of \(kvHeadCount) key/value heads") }
        guard rmsNormEps > 0, rmsNormEps.isFinite else { throw fail("rms_norm_eps \(rmsNormEps) must be positive") }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw fail("rope_theta \(ropeTheta) must be positive") }
        if let slidingRopeTheta, !(slidingRopeTheta > 0 && slidingRopeTheta.isFinite) {
            throw fail("the sliding layers' RoPE base \(slidingRopeTheta) must be positive")
        }
        if windowPattern != .none, let slidingWindow, slidingWindow <= 0 { throw fail("sliding_window \(slidingWindow) must be positive") }
        if let queryPreAttentionScalar, !(queryPreAttentionScalar > 0 && queryPreAttentionScalar.isFinite) {
            throw fail("query_pre_attn_scalar \(queryPreAttentionScalar) must be positive")
        }
        guard partialRotaryFactor > 0, partialRotaryFactor <= 1, Int(Float(headDim) * partialRotaryFactor) >= 2 else {
            throw fail("partial_rotary_factor \(partialRotaryFactor) leaves no rotary dimensions")
        }
        if case .frequencyFactors(let factors) = ropeScaling {
            let pairs = Int(Float(headDim) * partialRotaryFactor) / 2
            guard factors.count == pairs, factors.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw fail("RoPE frequency factors must be \(pairs) positive numbers (one per rotary pair), got \(factors.count)")
            }
        }
    }
}

/// Failures while configuring or loading a model; each names the file, key or tensor.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case unsupportedArchitecture(String, supported: [String])
    case missingTensor(String, source: String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int], source: String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .invalidConfig(let why):
            return "invalid model configuration: \(why)"
        case .unsupportedArchitecture(let name, let supported):
            return "unsupported architecture '\(name)'; Lorikeet supports \(supported.joined(separator: ", "))"
        case .missingTensor(let name, let source):
            return "\(source): tensor '\(name)' is missing; is this file complete and of the architecture it claims?"
        case .shapeMismatch(let name, let expected, let found, let source):
            return "\(source): tensor '\(name)' has shape \(found), expected \(expected) from the model configuration"
        case .unreadable(let why):
            return why
        }
    }
}
