import Quantization
import TensorCore

/// How the frozen base's projections are held during training (the recipe's
/// `quantization.base`): QLoRA's NF4, ggml's Q8_0, plain Float32 (classic LoRA), or `source`:
/// the model file's own blocks (Q4_K, Q5_0, Q4_1, …), decoded panel by panel, so the adapter
/// learns against exactly the weights llama.cpp will serve, with no re-encoding error and no
/// more memory than the file; projections the file stores as floats (F32/F16/BF16, or a
/// safetensors folder) are encoded as NF4 instead, which keeps QLoRA's memory, and so are the
/// residual weights PiSSA and LoftQ write (they are no longer the file's, so no block of the
/// file can hold them), which lets those initialisations run under the default.
public enum BasePrecision: String, Sendable, CaseIterable, Codable {
    case nf4, q8_0, f32, source
}

extension BasePrecision {
    /// `dense` [O, I] encoded in this precision; `name` is the module the error names.
    public func encode(_ dense: Tensor, name: String) throws(ModelError) -> any QuantizedMatrix {
        let i = dense.shape[1]
        switch self {
        case .nf4: return NF4Matrix(quantizing: dense)
        case .q8_0:
            guard i % Q8_0Matrix.blockSize == 0 else {
                throw .invalidConfig("\(name): \(i) input features are not a multiple of 32, which q8_0 needs; use nf4 or f32")
            }
            return Q8_0Matrix(quantizing: dense)
        case .f32: return DenseMatrix(dense)
        case .source: return NF4Matrix(quantizing: dense)  // a weight that is not the file's
        }
    }
}

extension QuantizedMatrix {
    /// The whole matrix [rows, columns] in Float32 (one layer's worth, at load time only).
    public func decoded() -> Tensor {
        let out = TensorStorage(count: rows * columns)
        decodeRows(0..<rows, into: out.base)
        return Tensor(shape: [rows, columns], storage: out)
    }
}

extension DecoderModel {
    /// Re-encodes every frozen projection of the decoder layers in `precision`, one matrix at a
    /// time (the decoded Float32 copy of a single matrix is the peak extra memory). The
    /// embedding, and the output head when tied to it, keep the source's encoding: QLoRA
    /// quantizes linear layers only.
    public func quantizeBase(to precision: BasePrecision) throws(ModelError) {
        var failure: ModelError?
        replaceLinears { name, layer in
            guard failure == nil, name != "lm_head", let frozen = layer as? QuantizedLinear else { return layer }
            switch (precision, frozen.weight) {  // already what was asked: nothing to do
            case (.nf4, is NF4Matrix), (.q8_0, is Q8_0Matrix), (.f32, is DenseMatrix): return layer
            case (.source, _) where !Self.storedAsFloats(frozen.weight): return layer
            default: break
            }
            do throws(ModelError) {
                let target = precision == .source ? BasePrecision.nf4 : precision  // floats: NF4
                let encoded = try target.encode(frozen.weight.decoded(), name: name)
                return QuantizedLinear(weight: encoded, bias: frozen.bias, panelRows: frozen.panelRows)
            } catch {
                failure = error
                return layer
            }
        }
        if let failure { throw failure }
    }

    /// Whether a projection is held as plain floats (F32/F16/BF16 GGUF tensors, safetensors
    /// weights), which `source` encodes as NF4 rather than keep at 16 or 32 bits per weight.
    static func storedAsFloats(_ matrix: any QuantizedMatrix) -> Bool {
        ["f32", "f16", "bf16"].contains(matrix.encodingName)
    }

    /// Bytes of all encoded weights (embedding, projections, head when separate).
    public var encodedWeightBytes: Int {
        var total = embedding.encodedBytes
        for (name, layer) in namedLinears {
            if let frozen = layer as? QuantizedLinear, name != "lm_head" || !config.tieWordEmbeddings { total += frozen.weight.encodedBytes }
        }
        return total
    }
}
