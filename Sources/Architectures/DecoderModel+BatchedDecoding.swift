import Foundation
import Quantization
import TensorCore

/// One adapter's LoRA weights held as data, apart from any model: a server keeps one base
/// decoder and many of these, and each row of a batched step adds its own adapter's update to
/// the base's shared product.
public final class AdapterWeights: @unchecked Sendable {
    /// Updates keyed by Hugging Face module name (`model.layers.0.self_attn.q_proj`, `lm_head`);
    /// modules without an entry are the base's alone. Masks are ignored (no dropout at inference).
    public let updates: [String: LowRankUpdate]

    public init(updates: [String: LowRankUpdate]) {
        self.updates = updates
    }
}

/// One sequence's share of a batched step: the tokens it adds (one while decoding, a chunk of
/// its prompt while prefilling), its own KV cache and its own adapter (nil: the base alone).
public struct BatchRow {
    public var ids: [Int32]
    public let cache: KVCache
    public let adapter: AdapterWeights?

    public init(ids: [Int32], cache: KVCache, adapter: AdapterWeights?) {
        self.ids = ids
        self.cache = cache
        self.adapter = adapter
    }
}

/// Which token rows of a batched step carry which adapter: rows grouped by adapter, so each
/// adapter's A and B are one small GEMM over its rows.
struct AdapterRowGroups {
    let groups: [(weights: AdapterWeights, rows: [Range<Int>])]

    /// Groups `spans` (token rows of each sequence) by the identity of `adapters` (nil: none).
    init(spans: [Range<Int>], adapters: [AdapterWeights?]) {
        var order: [ObjectIdentifier] = []
        var byID: [ObjectIdentifier: (weights: AdapterWeights, rows: [Range<Int>])] = [:]
        for (span, adapter) in zip(spans, adapters) {
            guard let adapter else { continue }
            let id = ObjectIdentifier(adapter)
            if byID[id] == nil { order.append(id); byID[id] = (adapter, []) }
            byID[id]?.rows.append(span)
        }
        groups = order.compactMap { byID[$0] }
    }

    var isEmpty: Bool { groups.isEmpty }

    /// y [..., ΣO] with, in columns `column..<column + O` of each grouped row, that row's
    /// adapter's scale·(x·Aᵀ)·Bᵀ for `module` added; x [..., I] holds the same rows. Returns y
    /// itself when no row's adapter touches `module`.
    func adding(to y: Tensor, input x: Tensor, module: String, column: Int = 0) -> Tensor {
        var out: TensorStorage?
        let (width, inputs) = (y.shape[y.rank - 1], x.shape[x.rank - 1])
        for group in groups {
            guard let update = group.weights.updates[module] else { continue }
            let m = group.rows.reduce(0) { $0 + $1.count }
            let o = update.b.shape[0]
            precondition(update.a.shape[1] == inputs && column + o <= width,
                         "batched step: \(module)'s adapter A \(update.a.shape), B \(update.b.shape) does not fit \(inputs) → \(width)")
            let gathered = TensorStorage(count: m * inputs)  // [M, I]
            var r = 0
            for span in group.rows {
                (gathered.base + r * inputs).update(from: x.storage.base + span.lowerBound * inputs, count: span.count * inputs)
                r += span.count
            }
            let low = Tensor(shape: [m, inputs], storage: gathered).matmul(update.a, transposeB: true)  // [M, r]
            let term = low.matmul(update.b, transposeB: true)  // [M, O]
            let target: TensorStorage
            if let out { target = out } else {
                target = TensorStorage(count: y.count)
                target.base.update(from: y.storage.base, count: y.count)
                out = target
            }
            r = 0
            for span in group.rows {
                for row in span {
                    let dst = target.base + row * width + column, src = term.storage.base + r * o
                    for j in 0..<o { dst[j] += update.scale * src[j] }
                    r += 1
                }
            }
        }
        return out.map { Tensor(shape: y.shape, storage: $0) } ?? y
    }
}

extension DecoderModel {
    /// Next-token logits, one [V] per row, for several sequences at once: each row's tokens
    /// continue the positions in its own cache (lengths may differ) and join it.
    ///
    /// All rows' tokens go through every projection as ONE product over the shared base (the
    /// encoded weight decoded once per panel for the whole batch), each row then adds its own
    /// adapter's low-rank term (rows grouped by adapter), and attends over its own cache at its
    /// own positions (sliding windows as the layer says). ``nextTokenLogits(ids:cache:)`` run
    /// row by row is the naive twin that the tests compare this with.
    public func batchedNextTokenLogits(_ rows: [BatchRow]) -> [[Float]] {
        precondition(!rows.isEmpty, "batchedNextTokenLogits: no rows")
        precondition(Set(rows.map { ObjectIdentifier($0.cache) }).count == rows.count, "batchedNextTokenLogits: each row needs its own cache")
        var ids: [Int32] = [], positions: [Int32] = [], spans: [Range<Int>] = []
        for row in rows {
            precondition(!row.ids.isEmpty, "batchedNextTokenLogits: a row without tokens")
            precondition(row.ids.count <= row.cache.remaining,
                         "batchedNextTokenLogits: \(row.ids.count) tokens do not fit the \(row.cache.remaining) positions left in a cache")
            let start = ids.count
            ids += row.ids
            positions += (0..<row.ids.count).map { Int32(row.cache.length + $0) }
            spans.append(start..<ids.count)
        }
        return noGrad {
            let (n, c, b) = (ids.count, config.hiddenSize, rows.count)
            let batch = BatchLayout(spans: spans, caches: rows.map(\.cache),
                                    adapters: AdapterRowGroups(spans: spans, adapters: rows.map(\.adapter)))
            var x = embed(IntTensor(shape: [1, n], scalars: ids))  // [1, N, C]
            let tokenPositions = IntTensor(shape: [1, n], scalars: positions)
            for layer in layers { x = layer.batchedForward(x, config: config, positions: tokenPositions, batch: batch) }
            for row in rows { row.cache.commit(row.ids.count) }
            let last = TensorStorage(count: b * c)  // [B, C]: each row's last token
            for (i, span) in spans.enumerated() { (last.base + i * c).update(from: x.storage.base + (span.upperBound - 1) * c, count: c) }
            let normed = Tensor.rmsNorm(Tensor(shape: [b, c], storage: last), weight: finalNorm, eps: config.rmsNormEps,
                                        weightOffset: config.normWeightOffset)
            let headRows = AdapterRowGroups(spans: (0..<b).map { $0..<($0 + 1) }, adapters: rows.map(\.adapter))
            // Every row here is one sequence's last token, which decoding it alone sends through the head by itself.
            let head = Self.sharedProduct(normed, through: [head], tokenRows: Array(0..<b))
            let logits = headRows.adding(to: head, input: normed, module: "lm_head")  // [B, V]
            let v = config.vocabSize
            return (0..<b).map { i in
                var row = Array(UnsafeBufferPointer(start: logits.storage.base + i * v, count: v))
                if let cap = config.finalLogitSoftcap { row = row.map { cap * Foundation.tanh($0 / cap) } }
                return row
            }
        }
    }
}

extension DecoderModel {
    /// x [..., I] through `layers` side by side [..., ΣO], the product every row of a batched
    /// step shares. For quantized layers and several rows, the weight's panels are decoded and
    /// multiplied on all cores, each core its own panels (disjoint columns of y) with the same
    /// GEMM per panel as `linearGroup`, which decodes them on one thread; otherwise `linearGroup`
    /// itself (one row: the matrix–vector kernels).
    ///
    /// `tokenRows` are rows that are a sequence's single new token: decoding that sequence
    /// alone multiplies such a row by itself (`matvec`), which for weights that round
    /// activations to 8 bits (`QuantizedMatrix.roundsActivations`) differs from the f32 products
    /// here by more than float order. Those rows then go through `tokenDotRows`, which gives
    /// `matvec`'s bits, so a batched step decodes each sequence as decoding it alone does.
    static func sharedProduct(_ x: Tensor, through layers: [any LinearLayer], tokenRows: [Int] = []) -> Tensor {
        let i = x.shape[x.rank - 1], n = x.count / max(i, 1)
        let quantized = layers.compactMap { $0 as? QuantizedLinear }
        guard n > 1, quantized.count == layers.count else { return Tensor.projectStacked(x, through: layers) }
        if !tokenRows.isEmpty, quantized.contains(where: { $0.weight.roundsActivations }) {
            if tokenRows.count == n { return fusedProduct(x, through: quantized, tokens: true) }
            return withTokenRows(tokenRows, of: sharedProduct(x, through: layers), input: x, through: quantized)
        }
        if n <= fusedProductRows { return fusedProduct(x, through: quantized) }
        guard Parallel.threadCount > 1 else { return Tensor.projectStacked(x, through: layers) }
        let o = quantized.reduce(0) { $0 + $1.outputFeatures }
        var panels: [(layer: QuantizedLinear, first: Int, count: Int, column: Int)] = []
        var column = 0
        for layer in quantized {
            for r0 in stride(from: 0, to: layer.outputFeatures, by: layer.panelRows) {
                panels.append((layer, r0, min(layer.panelRows, layer.outputFeatures - r0), column + r0))
            }
            column += layer.outputFeatures
        }
        let y = TensorStorage(count: n * o)  // [N, ΣO]
        let widest = quantized.map { min($0.panelRows, $0.outputFeatures) }.max() ?? 0
        let xs = x.storage
        Parallel.forChunks(panels.count) { range in
            let scratch = TensorStorage(count: widest * i)  // [panel, I]
            for p in range {
                let panel = panels[p]
                panel.layer.weight.decodeRows(panel.first..<(panel.first + panel.count), into: scratch.base)
                gemm(transA: false, transB: true, m: n, n: panel.count, k: i, a: xs.base, lda: i, b: scratch.base, ldb: i, beta: 0,
                     c: y.base + panel.column, ldc: o)
            }
        }
        addBiases(quantized, to: y, rows: n, width: o)
        return Tensor(shape: Array(x.shape.dropLast()) + [o], storage: y)
    }

    /// Up to this many rows, `sharedProduct` multiplies through the fused many-vector kernels
    /// (`QuantizedMatrix.dotRows(_:with:vectors:…)`); more rows decode panels for a GEMM, whose
    /// decoding and packing a larger batch amortizes. scripts/bench/fused_product_crossover.sh
    /// (one thread, SmolLM2's Q4_1 shapes) put the crossover between 16 and 24 rows on a loaded
    /// machine; at 24, a prefill step of 21 rows through the fused kernels also drifted 1.6e-5
    /// (relative) from the sequential GEMM prefill in BatchedDecodingParityTests, over its 1e-5 bar.
    static let fusedProductRows = 16

    /// Rows of the stored weights in a fused chunk: a few chunks per thread for the smallest
    /// projections, and whole heads of Q and K (64 to 256 rows), whose rotary row order the
    /// GGUF view undoes per head.
    static let fusedChunkRows = 256

    /// `sharedProduct` for a few rows: every layer's weight rows, in chunks claimed by the spin
    /// pool's threads, against all n rows of x at once, each block decoded in registers once
    /// per tile of rows; no decoded panel is written.
    ///
    /// `tokens`: through `tokenDotRows`, each row with `matvec`'s bits where the weight rounds
    /// activations (any number of rows: that bit-equality holds for all of them).
    static func fusedProduct(_ x: Tensor, through layers: [QuantizedLinear], tokens: Bool = false) -> Tensor {
        let i = x.shape[x.rank - 1], n = x.count / max(i, 1)
        let o = layers.reduce(0) { $0 + $1.outputFeatures }
        var chunks: [(layer: QuantizedLinear, rows: Range<Int>, column: Int)] = []
        var column = 0
        for layer in layers {
            for r0 in stride(from: 0, to: layer.outputFeatures, by: fusedChunkRows) {
                chunks.append((layer, r0..<min(r0 + fusedChunkRows, layer.outputFeatures), column + r0))
            }
            column += layer.outputFeatures
        }
        let y = TensorStorage(count: n * o)  // [N, ΣO]
        let xs = x.storage
        SpinPool.shared.run(chunks: chunks.count) { c in
            let chunk = chunks[c]
            let weight = chunk.layer.weight
            if tokens {
                weight.tokenDotRows(chunk.rows, with: xs.base, vectors: n, stride: i, into: y.base + chunk.column, stride: o)
            } else {
                weight.dotRows(chunk.rows, with: xs.base, vectors: n, stride: i, into: y.base + chunk.column, stride: o)
            }
        }
        addBiases(layers, to: y, rows: n, width: o)
        return Tensor(shape: Array(x.shape.dropLast()) + [o], storage: y)
    }

    /// y [..., ΣO] with rows `tokenRows` replaced by their token product (`fusedProduct` with
    /// `tokens`) of the same rows of x [..., I]: a step that mixes prompt chunks with decoded
    /// tokens.
    static func withTokenRows(_ tokenRows: [Int], of y: Tensor, input x: Tensor, through layers: [QuantizedLinear]) -> Tensor {
        let i = x.shape[x.rank - 1], o = y.shape[y.rank - 1], m = tokenRows.count
        let gathered = TensorStorage(count: m * i)  // [M, I]
        for (r, row) in tokenRows.enumerated() { (gathered.base + r * i).update(from: x.storage.base + row * i, count: i) }
        let tokens = fusedProduct(Tensor(shape: [m, i], storage: gathered), through: layers, tokens: true)  // [M, ΣO]
        let out = TensorStorage(count: y.count)
        out.base.update(from: y.storage.base, count: y.count)
        for (r, row) in tokenRows.enumerated() { (out.base + row * o).update(from: tokens.storage.base + r * o, count: o) }
        return Tensor(shape: y.shape, storage: out)
    }

    /// y [N, ΣO] += each layer's bias in its columns.
    static func addBiases(_ layers: [QuantizedLinear], to y: TensorStorage, rows n: Int, width o: Int) {
        var column = 0
        for layer in layers {
            if let bias = layer.bias {
                for row in 0..<n {
                    let yr = y.base + row * o + column
                    for j in 0..<layer.outputFeatures { yr[j] += bias.storage.base[j] }
                }
            }
            column += layer.outputFeatures
        }
    }
}

/// Where each sequence's tokens sit in a batched step's rows, its cache, and its adapter.
struct BatchLayout {
    let spans: [Range<Int>]
    let caches: [KVCache]
    let adapters: AdapterRowGroups
    /// Rows that are a sequence's only token in this step (`DecoderModel.sharedProduct`), found
    /// once per step rather than at each of a layer's products.
    let tokenRows: [Int]

    init(spans: [Range<Int>], caches: [KVCache], adapters: AdapterRowGroups) {
        self.spans = spans
        self.caches = caches
        self.adapters = adapters
        tokenRows = spans.filter { $0.count == 1 }.map(\.lowerBound)
    }
}

extension DecoderLayer {
    /// The batched twin of ``forward(_:config:positions:segments:cache:)``: x [1, N, C] holds
    /// the new tokens of several sequences side by side (`batch.spans`); projections are one
    /// product over all N rows plus each row's adapter term, attention runs per sequence
    /// against its own cache.
    func batchedForward(_ x: Tensor, config: ModelConfig, positions: IntTensor, batch: BatchLayout) -> Tensor {
        typealias S = WeightNames.Suffix
        let n = x.shape[1]
        let (h, g, d) = (config.headCount, config.kvHeadCount, config.headDim)
        let (eps, offset) = (config.rmsNormEps, config.normWeightOffset)
        func adapted(_ y: Tensor, _ input: Tensor, _ suffix: String, column: Int = 0) -> Tensor {
            batch.adapters.adding(to: y, input: input, module: WeightNames.layer(index, suffix), column: column)
        }

        let normed = Tensor.rmsNorm(x, weight: attentionNorm, eps: eps, weightOffset: offset)
        var q: Tensor, k: Tensor, v: Tensor
        if config.fusedQKV {
            let qkv = adapted(DecoderModel.sharedProduct(normed, through: [projection(S.qkv)], tokenRows: batch.tokenRows), normed, S.qkv)  // [1, N, (H + 2G)·D]
            q = qkv.slice(axis: 2, 0..<(h * d))
            k = qkv.slice(axis: 2, (h * d)..<((h + g) * d))
            v = qkv.slice(axis: 2, ((h + g) * d)..<((h + 2 * g) * d))
        } else {
            let stacked = DecoderModel.sharedProduct(normed, through: [projection(S.q), projection(S.k), projection(S.v)], tokenRows: batch.tokenRows)  // [1, N, (H + 2G)·D]
            let (hd, gd) = (h * d, g * d)
            q = adapted(stacked.slice(axis: 2, 0..<hd), normed, S.q)
            k = adapted(stacked.slice(axis: 2, hd..<(hd + gd)), normed, S.k)
            v = adapted(stacked.slice(axis: 2, (hd + gd)..<(hd + 2 * gd)), normed, S.v)
        }
        q = q.reshaped([1, n, h, d])
        k = k.reshaped([1, n, g, d])
        v = v.reshaped([1, n, g, d])
        if let qNorm, let kNorm {
            q = Tensor.rmsNorm(q, weight: qNorm, eps: eps, weightOffset: offset)
            k = Tensor.rmsNorm(k, weight: kNorm, eps: eps, weightOffset: offset)
        }
        q = q.rotary(rope, positions: positions)
        k = k.rotary(rope, positions: positions)
        let options = AttentionOptions(scale: config.attentionScale, window: window, softcap: config.attentionSoftcap)
        let attended = TensorStorage(count: n * h * d)  // [1, N, H, D]
        func attend(_ s: Int) {
            let (span, cache) = (batch.spans[s], batch.caches[s])
            func rows(_ t: Tensor, _ heads: Int) -> Tensor {  // [1, Tn, heads, D]
                let s = TensorStorage(count: span.count * heads * d)
                s.base.update(from: t.storage.base + span.lowerBound * heads * d, count: span.count * heads * d)
                return Tensor(shape: [1, span.count, heads, d], storage: s)
            }
            let out = cache.attend(layer: index, q: rows(q, h), k: rows(k, g), v: rows(v, g), options: options)
            (attended.base + span.lowerBound * h * d).update(from: out.storage.base, count: span.count * h * d)
        }
        if n == batch.spans.count {
            // Decoding: one token per sequence, each over its own cache. One pool job over the
            // sequences (inside it each attention runs its heads on its own thread) instead of
            // one small job of heads per sequence.
            SpinPool.shared.run(chunks: n) { attend($0) }
        } else {
            for s in batch.spans.indices { attend(s) }
        }
        let attendedRows = Tensor(shape: [1, n, h * d], storage: attended)
        var attnOut = adapted(DecoderModel.sharedProduct(attendedRows, through: [projection(S.o)], tokenRows: batch.tokenRows), attendedRows, S.o)
        if let postAttentionNorm { attnOut = Tensor.rmsNorm(attnOut, weight: postAttentionNorm, eps: eps, weightOffset: offset) }
        let residual = x + attnOut

        let normed2 = Tensor.rmsNorm(residual, weight: mlpNorm, eps: eps, weightOffset: offset)
        let f = config.intermediateSize
        let gateUp: Tensor  // [1, N, 2F], gate then up
        if config.fusedGateUp {
            gateUp = adapted(DecoderModel.sharedProduct(normed2, through: [projection(S.gateUp)], tokenRows: batch.tokenRows), normed2, S.gateUp)
        } else {
            let stacked = DecoderModel.sharedProduct(normed2, through: [projection(S.gate), projection(S.up)], tokenRows: batch.tokenRows)
            gateUp = adapted(adapted(stacked, normed2, S.gate), normed2, S.up, column: f)
        }
        let activated: Tensor  // [1, N, F]
        if config.activation == .silu {
            activated = Tensor.swiglu(stacked: gateUp)
        } else {
            activated = gateUp.slice(axis: 2, 0..<f).geluTanh() * gateUp.slice(axis: 2, f..<(2 * f))
        }
        var mlpOut = adapted(DecoderModel.sharedProduct(activated, through: [projection(S.down)], tokenRows: batch.tokenRows), activated, S.down)
        if let postMLPNorm { mlpOut = Tensor.rmsNorm(mlpOut, weight: postMLPNorm, eps: eps, weightOffset: offset) }
        return residual + mlpOut
    }
}
