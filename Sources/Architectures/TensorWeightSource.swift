import Quantization
import TensorCore

/// Weights already in memory as Float32 tensors, by Hugging Face name (tests, and formats
/// that decode small files whole).
public struct TensorWeightSource: WeightSource {
    public let sourceName: String
    let tensors: [String: Tensor]

    public init(_ tensors: [String: Tensor], sourceName: String = "in-memory weights") {
        self.tensors = tensors
        self.sourceName = sourceName
    }

    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    public func matrix(_ name: String) throws(ModelError) -> any QuantizedMatrix {
        guard let t = tensors[name] else { throw .missingTensor(name, source: sourceName) }
        guard t.rank == 2 else { throw .shapeMismatch(tensor: name, expected: [-1, -1], found: t.shape, source: sourceName) }
        return DenseMatrix(t)
    }

    public func vector(_ name: String) throws(ModelError) -> Tensor {
        guard let t = tensors[name] else { throw .missingTensor(name, source: sourceName) }
        guard t.rank == 1 else { throw .shapeMismatch(tensor: name, expected: [-1], found: t.shape, source: sourceName) }
        return t
    }
}
