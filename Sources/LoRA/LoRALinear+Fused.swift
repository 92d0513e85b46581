import TensorCore

/// A LoRA layer over a frozen base as one recorded op, forward and backward side by side.
///
/// Composed of generic ops (base, dropout, two matmuls, scaled, add), every adapted projection
/// allocated and streamed several extra [N, O] tensors forward and backward: ~18% of a
/// SmolLM2-135M step for adapters with a few percent of its FLOPs. Here the adapter's product
/// is accumulated into the base's output by one GEMM (alpha = scale, beta = 1), and backward
/// needs [N, r] scratch only (plus one [N, I] under dropout).
///
/// Legend: N rows (all leading dimensions of x), I input features, O output features, r rank;
/// xd = dropout(x) (x itself when not training or p = 0), u = xd·Aᵀ.
extension LoRALinear {
    func fusedForward(_ x: Tensor, over frozen: any FrozenLinear) -> Tensor {  // x [..., I] → [..., O]
        let (i, o, r) = (inputFeatures, outputFeatures, a.shape[0])
        precondition(x.shape.last == i, "LoRALinear: input \(x.shape) does not end in \(i) features")
        let n = x.count / max(i, 1)
        let compute = ComputeDType.current
        let y = TensorStorage(count: n * o)  // [N, O]
        frozen.frozenProduct(x.storage.base, rows: n, into: y.base, compute: compute)

        // PEFT drops the adapter's input only; the mask is drawn as `dropout` draws it (one
        // seed from the generator, so rewinds and resumes replay it).
        let mask = isTraining && dropout > 0 ? DropoutMask(probability: dropout, seed: dropoutRNG.next()) : nil
        let dropped: TensorStorage  // [N, I] xd
        if let mask {
            dropped = TensorStorage(count: n * i)
            mask.apply(x.storage.base, into: dropped.base, count: n * i)
        } else {
            dropped = x.storage
        }
        let (aw, bw) = (a.storage, b.storage)  // A [r, I], B [O, r]
        let u = TensorStorage(count: n * r)  // [N, r]
        gemm(transA: false, transB: true, m: n, n: r, k: i, a: dropped.base, lda: i, b: aw.base, ldb: i, beta: 0, c: u.base, ldc: r)
        // y += scale·u·Bᵀ
        gemm(transA: false, transB: true, m: n, n: o, k: r, alpha: scale, a: u.base, lda: r, b: bw.base, ldb: r,
             beta: 1, c: y.base, ldc: o)

        let scale = scale
        return Tensor.record("lora_linear", shape: Array(x.shape.dropLast()) + [o], storage: y, inputs: [x, a, b]) { ctx in
            let dy = ctx.grad  // [N, O]
            if let db = ctx.gradient(2) {  // dB [O, r] += scale·dyᵀ·u
                gemm(transA: true, transB: false, m: o, n: r, k: n, alpha: scale, a: dy, lda: o, b: u.base, ldb: r,
                     beta: 1, c: db, ldc: r)
            }
            let (da, dx) = (ctx.gradient(1), ctx.gradient(0))
            guard da != nil || dx != nil else { return }
            let g = TensorStorage(count: n * r)  // [N, r] = scale·dy·B
            gemm(transA: false, transB: false, m: n, n: r, k: o, alpha: scale, a: dy, lda: o, b: bw.base, ldb: r,
                 beta: 0, c: g.base, ldc: r)
            if let da {  // dA [r, I] += gᵀ·xd
                gemm(transA: true, transB: false, m: r, n: i, k: n, a: g.base, lda: r, b: dropped.base, ldb: i,
                     beta: 1, c: da, ldc: i)
            }
            guard let dx else { return }
            frozen.frozenInputGradient(dy, rows: n, accumulatingInto: dx, compute: compute)
            if let mask {  // dx += (g·A) ⊙ mask
                let gA = TensorStorage(count: n * i)  // [N, I]
                gemm(transA: false, transB: false, m: n, n: i, k: r, a: g.base, lda: r, b: aw.base, ldb: i,
                     beta: 0, c: gA.base, ldc: i)
                mask.accumulateGradient(gA.base, into: dx, count: n * i)
            } else {     // dx += g·A
                gemm(transA: false, transB: false, m: n, n: i, k: r, a: g.base, lda: r, b: aw.base, ldb: i,
                     beta: 1, c: dx, ldc: i)
            }
        }
    }
}
