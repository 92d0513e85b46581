import Training
import Formats
import Foundation
import LoRA
import Architectures
import Quantization
import TensorCore

/// The weights of base + adapter folded into one model, tensor by tensor, under Hugging Face
/// names and orientation ([out, in], rotary rows in "rotate half" order).
///
/// A projection's merged weight is its frozen base decoded to Float32 plus scale·B·A. Which
/// base that is was decided when the adapter was attached: the source weights re-encoded as
/// Float32 (`--onto original`), or the NF4/Q8_0 base the adapter was trained against (`--onto
/// trained`). Everything that is not a projection (embeddings, norms, biases, an untied head)
/// is read from the source unchanged. Only one tensor is decoded at a time.
public struct MergedWeights {
    /// Names and ranks of every tensor the merged model holds, in the source's order.
    public let entries: [(name: String, rank: Int)]
    let linears: [String: any LinearLayer]
    let source: any WeightSource

    public init(model: DecoderModel, source: any WeightSource, entries: [(name: String, rank: Int)]) {
        self.entries = entries
        self.source = source
        var byName: [String: any LinearLayer] = [:]
        for (name, layer) in model.namedLinears { byName[name] = layer }
        linears = byName
    }

    /// Modules whose weight receives an adapter update.
    public var adaptedModules: [String] { linears.filter { $0.value is LoRALinear }.map(\.key).sorted() }

    /// The merged tensor `name` in Float32, Hugging Face orientation.
    public func tensor(_ name: String, rank: Int) throws(ModelError) -> Tensor {
        if name.hasSuffix(".weight"), let layer = linears[String(name.dropLast(".weight".count))] {
            return try Self.mergedWeight(layer, name: name)
        }
        return rank == 1 ? try source.vector(name) : try source.matrix(name).decoded()
    }

    /// W (+ scale·B·A when adapted) of one projection, [O, I].
    static func mergedWeight(_ layer: any LinearLayer, name: String) throws(ModelError) -> Tensor {
        if let frozen = layer as? QuantizedLinear { return frozen.weight.decoded() }
        guard let adapted = layer as? LoRALinear, let frozen = adapted.base as? QuantizedLinear else {
            throw .unreadable("\(name): this projection is neither a frozen weight nor a LoRA layer over one; it cannot be merged")
        }
        let merged = frozen.weight.decoded(), delta = adapted.delta()  // [O, I] each
        merged.withUnsafeMutableBufferPointer { w in
            delta.withUnsafeBufferPointer { d in for i in 0..<w.count { w[i] += d[i] } }
        }
        return merged
    }

    /// GGUF tensors that hold configuration rather than weights: llama.cpp's `rope_freqs`
    /// (Llama 3 RoPE scaling, a config.json entry in Hugging Face folders). A merged GGUF copies
    /// them from the base; they have no Hugging Face tensor.
    public static let ggufConfigurationTensors: Set<String> = ["rope_freqs.weight"]

    /// The weight tensors of a GGUF file of `config`'s layout under Hugging Face names, in file order.
    public static func entries(gguf file: GGUFFile, config: ModelConfig) throws(ModelError) -> [(name: String, rank: Int)] {
        try file.tensors.filter { !ggufConfigurationTensors.contains($0.name) }.map { info throws(ModelError) in
            guard let name = GGUFWeightSource.huggingFaceName(info.name, config: config) else {
                throw .unreadable("\(file.path): tensor '\(info.name)' has no Hugging Face counterpart Lorikeet knows; it cannot be merged")
            }
            return (name, info.dimensions.count)
        }
    }

    /// The tensors of a Hugging Face folder, sorted by name.
    public static func entries(folder: SafetensorsFolder) -> [(name: String, rank: Int)] {
        folder.tensorNames.compactMap { name in folder.entry(name).map { (name, $0.entry.shape.count) } }
    }
}
