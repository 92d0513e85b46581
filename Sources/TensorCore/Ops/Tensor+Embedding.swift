/// Embedding lookup (row gather) and its gradient (row scatter-add).
extension Tensor {
    /// weight [V, C] gathered at `ids` [...] → [..., C].
    /// Ids must lie in 0..<V; the data pipeline validates them against the vocabulary.
    public static func embedding(_ weight: Tensor, ids: IntTensor) -> Tensor {
        precondition(weight.rank == 2, "embedding: weight must be [V, C], got \(weight.shape)")
        let vocab = weight.shape[0], width = weight.shape[1]
        for id in ids.scalars {
            precondition(id >= 0 && Int(id) < vocab, "embedding: token id \(id) outside vocabulary of \(vocab)")
        }
        let out = TensorStorage(count: ids.count * width)
        let w = weight.storage.base
        ids.scalars.withUnsafeBufferPointer { idp in
            Parallel.forChunks(idp.count, minChunk: 64) { r in
                for i in r { (out.base + i * width).update(from: w + Int(idp[i]) * width, count: width) }
            }
        }
        let idValues = ids.scalars
        return record("embedding", shape: ids.shape + [width], storage: out, inputs: [weight]) { ctx in
            guard let dw = ctx.gradient(0) else { return }
            // Sequential: repeated ids add into the same row.
            for (i, id) in idValues.enumerated() { axpy(width, 1, ctx.grad + i * width, dw + Int(id) * width) }
        }
    }
}
