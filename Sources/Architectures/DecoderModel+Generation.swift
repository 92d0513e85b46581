import Foundation
import Quantization
import TensorCore

extension DecoderModel {
    /// A cache for up to `capacity` positions (prompt plus generated tokens).
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.layerCount, capacity: capacity, kvHeads: config.kvHeadCount, headDim: config.headDim)
    }

    /// Next-token logits [V] after `ids`, which continue the positions already in `cache`;
    /// their keys and values join the cache. Only the last position goes through the head.
    public func nextTokenLogits(ids: [Int32], cache: KVCache) -> [Float] {
        precondition(!ids.isEmpty, "nextTokenLogits: no tokens")
        precondition(ids.count <= cache.remaining, "nextTokenLogits: \(ids.count) tokens do not fit the \(cache.remaining) positions left in the cache")
        return noGrad {
            let n = ids.count, c = config.hiddenSize
            let past = Int32(cache.length)
            let positions = IntTensor(shape: [1, n], scalars: (0..<Int32(n)).map { past + $0 })
            var x = embed(IntTensor(shape: [1, n], scalars: ids))  // [1, Tn, C]
            for layer in layers { x = layer.forward(x, config: config, positions: positions, segments: nil, cache: cache) }
            cache.commit(n)
            let last = Tensor(shape: [1, c], scalars: Array(x.scalars[((n - 1) * c)..<(n * c)]))
            let normed = Tensor.rmsNorm(last, weight: finalNorm, eps: config.rmsNormEps, weightOffset: config.normWeightOffset)
            var logits = head.forward(normed).scalars  // [V]
            if let cap = config.finalLogitSoftcap { logits = logits.map { cap * Foundation.tanh($0 / cap) } }
            return logits
        }
    }
}
