import Formats
import Quantization
import TensorCore

/// Weights of a Hugging Face folder, decoded from the mapped files row by row on demand.
public struct SafetensorsWeightSource: WeightSource {
    public let folder: SafetensorsFolder
    public var sourceName: String { folder.path }

    public init(folder: SafetensorsFolder) { self.folder = folder }

    public func contains(_ name: String) -> Bool { folder.entry(name) != nil }

    public func matrix(_ name: String) throws(ModelError) -> any QuantizedMatrix {
        guard let (file, entry) = folder.entry(name) else { throw .missingTensor(name, source: sourceName) }
        guard entry.shape.count == 2 else { throw .shapeMismatch(tensor: name, expected: [-1, -1], found: entry.shape, source: sourceName) }
        return SafetensorsMatrix(file: file, entry: entry)
    }

    public func vector(_ name: String) throws(ModelError) -> Tensor {
        guard let (file, entry) = folder.entry(name) else { throw .missingTensor(name, source: sourceName) }
        guard entry.shape.count == 1 else { throw .shapeMismatch(tensor: name, expected: [-1], found: entry.shape, source: sourceName) }
        let out = TensorStorage(count: entry.elementCount)
        file.decode(entry, elements: 0..<entry.elementCount, into: out.base)
        return Tensor(shape: entry.shape, storage: out)
    }
}

/// A 2-D safetensors tensor (F32/F16/BF16) read in place from the mapped file.
struct SafetensorsMatrix: QuantizedMatrix, @unchecked Sendable {
    let file: SafetensorsFile
    let entry: SafetensorsFile.Entry
    var rows: Int { entry.shape[0] }
    var columns: Int { entry.shape[1] }
    var encodedBytes: Int { entry.range.count }
    var encodingName: String { entry.dtype.rawValue.lowercased() }

    func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        file.decode(entry, elements: (range.lowerBound * columns)..<(range.upperBound * columns), into: destination)
    }
}

extension DecoderModel {
    /// Loads a Hugging Face folder (`config.json` + safetensors).
    public convenience init(huggingFaceFolder path: String) throws(ModelError) {
        do {
            let config = try ModelConfig(huggingFace: JSONValue(contentsOf: path + "/config.json"), path: path + "/config.json")
            try self.init(config: config, weights: SafetensorsWeightSource(folder: SafetensorsFolder(path: path)))
        } catch let error as ModelError {
            throw error
        } catch {
            throw .unreadable("\(error)")
        }
    }
}
