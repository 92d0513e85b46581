import CKernels
import Foundation

/// Output projection fused with masked cross-entropy, computed chunk by chunk.
///
/// loss = mean over trained rows n of [logsumexp_v(h_n · w_v) − h_n · w_{target_n}], with
/// hidden [N, C], weight [V, C] (the LM head, often the tied embedding) and targets [N]
/// where a negative target marks a row that is not trained on (prompt tokens, padding).
///
/// The [N, V] logits never exist: forward keeps a running max and sum per row over vocabulary
/// chunks of `vocabChunk` columns (and at most `rowChunk` rows at a time), and backward
/// recomputes each chunk's logits. Untrained rows are dropped before any GEMM, so
/// completion-only training pays only for the rows it learns from.
public struct CrossEntropyChunking: Sendable, Equatable {
    public var vocabChunk: Int
    public var rowChunk: Int
    public init(vocabChunk: Int = 4096, rowChunk: Int = 1024) {
        precondition(vocabChunk > 0 && rowChunk > 0, "CrossEntropyChunking: chunk sizes must be positive")
        self.vocabChunk = vocabChunk
        self.rowChunk = rowChunk
    }
}

extension Tensor {
    public static func linearCrossEntropy(hidden: Tensor, weight: Tensor, targets: IntTensor,
                                          chunking: CrossEntropyChunking = CrossEntropyChunking()) -> Tensor {
        precondition(hidden.rank == 2 && weight.rank == 2 && hidden.shape[1] == weight.shape[1],
                     "linearCrossEntropy: hidden \(hidden.shape) and weight \(weight.shape) must be [N, C] and [V, C]")
        let base = weight.storage.base, c = weight.shape[1]
        return chunkedCrossEntropy(hidden: hidden, vocab: weight.shape[0], targets: targets, chunking: chunking, softcap: nil,
                                   trainableWeight: weight) { v0, _ in UnsafePointer(base + v0 * c) }
    }

    /// The same loss over a frozen head [V, C] that is kept encoded (a quantized tied
    /// embedding): `decodeRows(range, destination)` decodes vocabulary rows into scratch, one
    /// vocabulary chunk at a time, in forward and again in backward. No weight gradient.
    /// `softcap` applies Gemma 2's final-logit soft-capping, cap·tanh(logit/cap), before the
    /// softmax (and its derivative 1 − tanh² in backward).
    public static func linearCrossEntropy(hidden: Tensor, frozenVocabulary vocab: Int,
                                          decodeRows: @escaping (Range<Int>, UnsafeMutablePointer<Float>) -> Void,
                                          targets: IntTensor, softcap: Float? = nil,
                                          chunking: CrossEntropyChunking = CrossEntropyChunking()) -> Tensor {
        precondition(hidden.rank == 2, "linearCrossEntropy: hidden \(hidden.shape) must be [N, C]")
        precondition(softcap.map { $0 > 0 } ?? true, "linearCrossEntropy: softcap must be positive")
        let c = hidden.shape[1]
        let panel = TensorStorage(count: min(chunking.vocabChunk, vocab) * c)  // [vocabChunk, C]
        return chunkedCrossEntropy(hidden: hidden, vocab: vocab, targets: targets, chunking: chunking, softcap: softcap, trainableWeight: nil) { v0, vn in
            decodeRows(v0..<(v0 + vn), panel.base)
            return UnsafePointer(panel.base)
        }
    }

    /// Shared body: `weightRows(v0, vn)` gives rows v0..<v0+vn of the head [vn, C], valid until
    /// the next call.
    private static func chunkedCrossEntropy(hidden: Tensor, vocab: Int, targets: IntTensor, chunking: CrossEntropyChunking,
                                            softcap: Float?, trainableWeight weight: Tensor?,
                                            weightRows: @escaping (Int, Int) -> UnsafePointer<Float>) -> Tensor {
        precondition(targets.shape == [hidden.shape[0]], "linearCrossEntropy: targets \(targets.shape) must be [\(hidden.shape[0])]")
        let c = hidden.shape[1]
        // Trained rows, gathered contiguously: rows[r] is the original row of gathered row r.
        var rows: [Int] = []
        var labels: [Int] = []
        for (n, target) in targets.scalars.enumerated() where target >= 0 {
            precondition(Int(target) < vocab, "linearCrossEntropy: target \(target) at row \(n) outside vocabulary of \(vocab)")
            rows.append(n)
            labels.append(Int(target))
        }
        let trained = rows.count
        let gathered = TensorStorage(count: trained * c)  // [Nt, C]
        for (r, n) in rows.enumerated() { (gathered.base + r * c).update(from: hidden.storage.base + n * c, count: c) }

        let lse = TensorStorage(count: trained)  // per trained row, kept for backward
        // Over a frozen head the input gradient is accumulated during this very pass, the way
        // attention accumulates its output: Σ_v exp(z_v − running max)·w_v per row, rescaled
        // when the max moves, and the target's w_t apart. Backward then needs no logits at all
        // (two head GEMMs per chunk in all instead of three).
        let fused = weight == nil && GradMode.isEnabled && hidden.requiresGrad && trained > 0
        // A frozen head's products follow `ComputeDType` (bf16 autocast runs lm_head in bf16 too);
        // a trainable head stays f32.
        let compute: ComputeDType = weight == nil ? ComputeDType.current : .f32
        let expected = fused ? TensorStorage(count: trained * c, zeroed: true) : nil    // [Nt, C] Σ exp·w
        let targetRows = fused ? TensorStorage(count: trained * c, zeroed: true) : nil  // [Nt, C] f·w_target
        var total = 0.0
        let runSum = TensorStorage(count: trained, zeroed: true)
        if trained > 0 {
            let runMax = TensorStorage(count: trained)
            let targetLogit = TensorStorage(count: trained)
            runMax.base.update(repeating: -.infinity, count: trained)
            forEachChunk(trained: trained, vocab: vocab, c: c, chunking: chunking, compute: compute,
                         hidden: gathered.base, weightRows: weightRows) { r0, rn, v0, vn, panel, logits in
                Parallel.forChunks(rn, minChunk: 8) { rr in
                    for r in rr {
                        let row = logits + r * vn, gr = r0 + r
                        if let cap = softcap { for j in 0..<vn { row[j] = cap * Foundation.tanh(row[j] / cap) } }
                        let m = lk_max_f32(row, vn)
                        let oldMax = runMax.base[gr]
                        let newMax = max(oldMax, m)
                        let rescale: Float = oldMax == -.infinity ? 0 : Foundation.exp(oldMax - newMax)
                        let label = labels[gr]
                        var z: Float = 0
                        if label >= v0 && label < v0 + vn {
                            // Read before the exponentials overwrite the row (recomputed exactly
                            // from the hidden row, so the loss does not depend on the chunking).
                            z = compute == .bf16 ? Self.bf16Dot(gathered.base + gr * c, panel + (label - v0) * c, c)
                                     : lk_dot_f32(gathered.base + gr * c, panel + (label - v0) * c, c)
                        }
                        if let expected, rescale != 1 { for i in 0..<c { expected.base[gr * c + i] *= rescale } }
                        if expected != nil, let cap = softcap {
                            // exp(capped − max) into the sum, times d capped / d raw = 1 − tanh² into the row.
                            var sum: Float = 0
                            for j in 0..<vn {
                                let e = Foundation.exp(row[j] - newMax), t = row[j] / cap
                                sum += e
                                row[j] = e * (1 - t * t)
                            }
                            runSum.base[gr] = runSum.base[gr] * rescale + sum
                        } else {
                            // exp_shift_sum writes its exponentials; the logits chunk is not needed afterwards.
                            runSum.base[gr] = runSum.base[gr] * rescale + lk_exp_shift_sum_f32(row, newMax, row, vn)
                        }
                        runMax.base[gr] = newMax
                        if label >= v0 && label < v0 + vn {
                            let capped = softcap.map { $0 * Foundation.tanh(z / $0) } ?? z
                            targetLogit.base[gr] = capped
                            if let targetRows {
                                let t = softcap.map { capped / $0 } ?? 0
                                let f = 1 - t * t
                                for i in 0..<c { targetRows.base[gr * c + i] = f * panel[(label - v0) * c + i] }
                            }
                        }
                    }
                }
                if let expected {  // Σ exp·w [rn, C] += p [rn, vn] · W [vn, C]
                    gemm(compute: compute, transB: false, m: rn, n: c, k: vn, a: logits, lda: vn,
                         b: panel, ldb: c, beta: 1, c: expected.base + r0 * c, ldc: c)
                }
            }
            for r in 0..<trained {
                lse.base[r] = runMax.base[r] + Foundation.log(runSum.base[r])
                total += Double(lse.base[r]) - Double(targetLogit.base[r])
            }
        }
        let out = TensorStorage(count: 1)
        out.base[0] = trained > 0 ? Float(total / Double(trained)) : 0

        return record("linear_cross_entropy", shape: [], storage: out, inputs: weight.map { [hidden, $0] } ?? [hidden]) { ctx in
            guard trained > 0 else { return }
            let dHidden = ctx.gradient(0), dWeight = weight == nil ? nil : ctx.gradient(1)
            guard dHidden != nil || dWeight != nil else { return }
            let scale = ctx.grad[0] / Float(trained)
            if let dHidden, let expected, let targetRows {
                // dh = scale · (Σ softmax·w − f·w_target), from what forward accumulated.
                for (r, n) in rows.enumerated() {
                    let inv = scale / runSum.base[r], e = expected.base + r * c, t = targetRows.base + r * c, d = dHidden + n * c
                    for i in 0..<c { d[i] += inv * e[i] - scale * t[i] }
                }
                return
            }
            let dGathered = dHidden != nil ? TensorStorage(count: trained * c, zeroed: true) : nil
            forEachChunk(trained: trained, vocab: vocab, c: c, chunking: chunking, compute: .f32,
                         hidden: gathered.base, weightRows: weightRows) { r0, rn, v0, vn, panel, logits in
                // dlogits = scale · (softmax − onehot(target)), in place.
                Parallel.forChunks(rn, minChunk: 8) { rr in
                    for r in rr {
                        let row = logits + r * vn, gr = r0 + r
                        let label = labels[gr]
                        if let cap = softcap {
                            // d/dz of cap·tanh(z/cap) is 1 − tanh²: the capped softmax gradient times it.
                            for j in 0..<vn {
                                let t = Foundation.tanh(row[j] / cap)
                                let g = scale * (Foundation.exp(cap * t - lse.base[gr]) - (j == label - v0 ? 1 : 0))
                                row[j] = g * (1 - t * t)
                            }
                            continue
                        }
                        _ = lk_exp_shift_sum_f32(row, lse.base[gr], row, vn)
                        for j in 0..<vn { row[j] *= scale }
                        if label >= v0 && label < v0 + vn { row[label - v0] -= scale }
                    }
                }
                if let dGathered {  // dH[r0..<r0+rn] += dlogits · W[v0..<v0+vn]
                    gemm(transA: false, transB: false, m: rn, n: c, k: vn, a: logits, lda: vn,
                         b: panel, ldb: c, beta: 1, c: dGathered.base + r0 * c, ldc: c)
                }
                if let dWeight {    // dW[v0..<v0+vn] += dlogitsᵀ · H[r0..<r0+rn]
                    gemm(transA: true, transB: false, m: vn, n: c, k: rn, a: logits, lda: vn,
                         b: gathered.base + r0 * c, ldb: c, beta: 1, c: dWeight + v0 * c, ldc: c)
                }
            }
            if let dHidden, let dGathered {
                for (r, n) in rows.enumerated() { axpy(c, 1, dGathered.base + r * c, dHidden + n * c) }
            }
        }
    }

    /// Calls `body(firstRow, rowCount, firstVocab, vocabCount, weightPanel[vocabCount, C],
    /// logits[rowCount, vocabCount])` for every (vocabulary chunk, row chunk), logits freshly
    /// computed as H · Wᵀ; each vocabulary chunk's weight rows are fetched once.
    private static func forEachChunk(trained: Int, vocab: Int, c: Int, chunking: CrossEntropyChunking, compute: ComputeDType,
                                     hidden: UnsafePointer<Float>, weightRows: (Int, Int) -> UnsafePointer<Float>,
                                     _ body: (Int, Int, Int, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let rowStep = min(chunking.rowChunk, trained), vocabStep = min(chunking.vocabChunk, vocab)
        let logits = TensorStorage(count: rowStep * vocabStep)  // the only logits buffer
        for v0 in stride(from: 0, to: vocab, by: vocabStep) {
            let vn = min(vocabStep, vocab - v0)
            let panel = weightRows(v0, vn)
            for r0 in stride(from: 0, to: trained, by: rowStep) {
                let rn = min(rowStep, trained - r0)
                gemm(compute: compute, transB: true, m: rn, n: vn, k: c, a: hidden + r0 * c, lda: c,
                     b: panel, ldb: c, beta: 0, c: logits.base, ldc: vn)
                body(r0, rn, v0, vn, panel, logits.base)
            }
        }
    }

    /// h·w with both rounded to bf16 and the products summed in f32: the target's logit as the
    /// bf16 logits GEMM computes it, so the loss does not mix the two precisions.
    private static func bf16Dot(_ h: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ c: Int) -> Float {
        var sum: Float = 0
        for i in 0..<c { sum += lk_bf16_round(h[i]) * lk_bf16_round(w[i]) }
        return sum
    }
}
