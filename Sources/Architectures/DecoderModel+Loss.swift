import Quantization
import TensorCore

extension DecoderModel {
    /// Mean next-token cross-entropy over the trained targets of a batch, through the fused
    /// chunked head: the [B·T, V] logits never exist and untrained positions cost no head work.
    /// Gemma 2's final-logit soft-capping is applied inside it.
    ///
    /// ids, positions, segments [B, T]; targets [B·T] (−1: not trained). The head must be the
    /// model's own frozen projection (it is: LoRA never targets `lm_head`).
    public func loss(ids: IntTensor, positions: IntTensor, segments: IntTensor?, targets: IntTensor,
                     options: ExecutionOptions = .inference, chunking: CrossEntropyChunking = CrossEntropyChunking()) throws(ModelError) -> Tensor {
        guard let frozen = head as? QuantizedLinear, frozen.bias == nil else {
            throw .invalidConfig("the output head is not a plain frozen projection; Lorikeet trains adapters below the head only")
        }
        let hidden = hiddenStates(ids: ids, positions: positions, segments: segments, options: options)  // [B, T, C]
        let flat = hidden.reshaped([ids.count, config.hiddenSize])                                       // [B·T, C]
        let weight = frozen.weight
        return withComputeDType(options.computeDType) {
            Tensor.linearCrossEntropy(hidden: flat, frozenVocabulary: weight.rows,
                                      decodeRows: { range, destination in weight.decodeRows(range, into: destination) },
                                      targets: targets, softcap: config.finalLogitSoftcap, chunking: chunking)
        }
    }
}
