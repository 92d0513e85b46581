import Architectures
import TensorCore

extension BaseModel {
    /// Next-token logits [T, V] of one sequence of token ids (with any applied adapter),
    /// computed in f32 without recording gradients: for checking against other implementations.
    public func logits(ids: [Int32]) throws(LorikeetError) -> Tensor {
        guard !ids.isEmpty else { throw .invalidRequest("no token ids") }
        let vocabulary = config.vocabSize
        guard ids.allSatisfy({ $0 >= 0 && Int($0) < vocabulary }) else {
            throw .invalidRequest("every token id must be below the vocabulary size \(vocabulary)")
        }
        let t = ids.count
        let logits = noGrad {
            model.logits(ids: IntTensor(shape: [1, t], scalars: ids), positions: IntTensor(shape: [1, t], scalars: (0..<Int32(t)).map { $0 }))
        }
        return logits.reshaped([t, vocabulary])  // [T, V]
    }
}
