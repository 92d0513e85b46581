import CKernels
import Formats
import Quantization
import TensorCore

/// Weights of a GGUF file under Hugging Face names, still encoded in their ggml blocks.
///
/// The differences between GGUF and Hugging Face layouts are handled here and only here:
/// tensor names (`blk.3.attn_q.weight` ↔ `model.layers.3.self_attn.q_proj.weight`, with
/// Gemma 2's extra norms), the row order of Q and K, which llama.cpp's converter permutes from
/// "rotate half" pairs (i, i + D/2) to interleaved pairs (2i, 2i + 1) for its RoPE kernel in
/// Llama-family files only, and Gemma's norm scales, which the converter stores as 1 + w.
/// Phi-3's fused `attn_qkv` (q, k, v rows) and `ffn_up` (gate rows, then up rows) keep
/// Hugging Face's row order, so they pass through unchanged.
public struct GGUFWeightSource: WeightSource {
    public let file: GGUFFile
    let config: ModelConfig
    public var sourceName: String { file.path }

    public init(file: GGUFFile, config: ModelConfig) {
        self.file = file
        self.config = config
    }

    public func contains(_ name: String) -> Bool { Self.ggufName(name, config: config).flatMap { file.tensor($0) } != nil }

    public func matrix(_ name: String) throws(ModelError) -> any QuantizedMatrix {
        let info = try tensorInfo(name)
        guard info.dimensions.count == 2 else {
            throw .shapeMismatch(tensor: name, expected: [-1, -1], found: info.shape, source: sourceName)
        }
        let matrix = GGUFMatrix(file: file, info: info)
        // Rotary rows: undo the converter's permutation (Llama-style architectures only).
        if name.hasSuffix(".weight"), let heads = Self.rotaryPermutedHeads(String(name.dropLast(".weight".count)), config: config) {
            return RotaryRowOrder(matrix, heads: heads)
        }
        return matrix
    }

    public func vector(_ name: String) throws(ModelError) -> Tensor {
        let info = try tensorInfo(name)
        guard info.dimensions.count == 1 else {
            throw .shapeMismatch(tensor: name, expected: [-1], found: info.shape, source: sourceName)
        }
        let out = TensorStorage(count: info.elementCount)
        GGUFDequantizer.decode(info.type, bytes: file.bytes(of: info), first: 0, count: info.elementCount, into: out.base)
        if name.hasSuffix("norm.weight"), let offset = Self.storedNormOffset(config) {
            for i in 0..<out.count { out.base[i] -= offset }
        }
        return Tensor(shape: info.shape, storage: out)
    }

    func tensorInfo(_ name: String) throws(ModelError) -> GGUFFile.TensorInfo {
        guard let ggufName = Self.ggufName(name, config: config), let info = file.tensor(ggufName) else {
            throw .missingTensor(Self.ggufName(name, config: config).map { "\(name) (GGUF: \($0))" } ?? name, source: sourceName)
        }
        guard info.type.isDecodable else {
            throw .unreadable("\(sourceName): tensor '\(info.name)' is \(info.type.name), which Lorikeet cannot decode. \(GGMLType.decodableAdvice)")
        }
        return info
    }

    /// The GGUF name of a Hugging Face tensor name (llama.cpp's tensor naming). Gemma 2's
    /// sandwich norms shift the meaning of `post_attention_layernorm` (after attention, not
    /// before the MLP), so the name depends on the configuration.
    public static func ggufName(_ name: String, config: ModelConfig) -> String? {
        switch name {
        case WeightNames.embedding: return "token_embd.weight"
        case WeightNames.finalNorm: return "output_norm.weight"
        case WeightNames.outputHead: return "output.weight"
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 3)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        var table = layerModules
        if config.sandwichNorms {
            table["post_attention_layernorm"] = "post_attention_norm"
            table["pre_feedforward_layernorm"] = "ffn_norm"
            table["post_feedforward_layernorm"] = "post_ffw_norm"
        }
        let rest = String(parts[3])
        guard let dot = rest.lastIndex(of: ".") else { return nil }
        let module = String(rest[..<dot]), kind = String(rest[rest.index(after: dot)...])
        guard let mapped = table[module], kind == "weight" || kind == "bias" else { return nil }
        return "blk.\(layer).\(mapped).\(kind)"
    }
}

extension GGUFWeightSource {
    /// Hugging Face module → llama.cpp's name within a block (`blk.N.<name>`).
    static let layerModules: [String: String] = [
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "self_attn.qkv_proj": "attn_qkv",
        "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "mlp.gate_up_proj": "ffn_up",
    ]

    /// The Hugging Face name of a GGUF tensor name in a file of `config`'s layout: the inverse
    /// of `ggufName` (Gemma 2/3's sandwich norms renamed as there).
    public static func huggingFaceName(_ gguf: String, config: ModelConfig) -> String? {
        guard config.sandwichNorms else { return huggingFaceName(gguf) }
        let sandwich = ["post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
                        "post_ffw_norm": "post_feedforward_layernorm"]
        let parts = gguf.split(separator: ".")
        if parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), parts[3] == "weight", let module = sandwich[String(parts[2])] {
            return WeightNames.layer(layer, module + ".weight")
        }
        return huggingFaceName(gguf)
    }

    /// The Hugging Face name of a GGUF tensor name: the inverse of `ggufName` for the
    /// unfused (Llama-style) layout, which is the one Lorikeet reads from GGUF.
    public static func huggingFaceName(_ gguf: String) -> String? {
        switch gguf {
        case "token_embd.weight": return WeightNames.embedding
        case "output_norm.weight": return WeightNames.finalNorm
        case "output.weight": return WeightNames.outputHead
        default: break
        }
        let parts = gguf.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let rest = String(parts[2])
        guard let dot = rest.lastIndex(of: ".") else { return nil }
        let stem = String(rest[..<dot]), kind = String(rest[rest.index(after: dot)...])
        let fused: Set<String> = ["self_attn.qkv_proj", "mlp.gate_up_proj"]
        guard kind == "weight" || kind == "bias",
              let module = layerModules.first(where: { $0.value == stem && !fused.contains($0.key) })?.key else { return nil }
        return WeightNames.layer(layer, module + "." + kind)
    }
}

/// A matrix stored as a GGUF tensor (rows = dimensions[1], columns = dimensions[0]).
struct GGUFMatrix: QuantizedMatrix, @unchecked Sendable {
    let file: GGUFFile
    let info: GGUFFile.TensorInfo
    var rows: Int { info.dimensions[1] }
    var columns: Int { info.dimensions[0] }
    var encodedBytes: Int { info.range.count }
    var encodingName: String { info.type.name.lowercased() }

    func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        GGUFDequantizer.decode(info.type, bytes: file.bytes(of: info), first: range.lowerBound * columns,
                               count: range.count * columns, into: destination)
    }

    private typealias OneVectorKernel = @convention(c) (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
    private typealias ManyVectorKernel = @convention(c) (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, Int, Int,
                                                 UnsafeMutablePointer<Float>?, Int) -> Void

    /// The fused C kernels of a block type, one vector (`lk_matvec_*`) and many (`lk_matmul_*`),
    /// and where the rows' blocks start and how many a row holds (a row is columns/32 blocks or
    /// columns/256 super-blocks, which the file's reader checked); nil for F16, F32 and BF16.
    private func blockKernels() -> (one: OneVectorKernel, many: ManyVectorKernel, base: UnsafeRawPointer, blocks: Int, rowBytes: Int)? {
        let kernels: (OneVectorKernel, ManyVectorKernel)
        switch info.type {
        case .q8_0: kernels = (lk_matvec_q8_0_f32, lk_matmul_q8_0_f32)
        case .q4_0: kernels = (lk_matvec_q4_0_f32, lk_matmul_q4_0_f32)
        case .q4_1: kernels = (lk_matvec_q4_1_f32, lk_matmul_q4_1_f32)
        case .q5_0: kernels = (lk_matvec_q5_0_f32, lk_matmul_q5_0_f32)
        case .q5_1: kernels = (lk_matvec_q5_1_f32, lk_matmul_q5_1_f32)
        case .q4_K: kernels = (lk_matvec_q4_k_f32, lk_matmul_q4_k_f32)
        case .q5_K: kernels = (lk_matvec_q5_k_f32, lk_matmul_q5_k_f32)
        case .q6_K: kernels = (lk_matvec_q6_k_f32, lk_matmul_q6_k_f32)
        default: return nil
        }
        guard let geometry = info.type.blockGeometry, columns % geometry.elements == 0,
              let base = file.bytes(of: info).baseAddress else { return nil }
        let blocks = columns / geometry.elements
        return (kernels.0, kernels.1, UnsafeRawPointer(base), blocks, blocks * geometry.bytes)
    }

    /// F16 and every block type go through the fused C kernels (the block kernels take the
    /// whole run of rows in one call); F32 and BF16 decode first.
    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        if info.type == .f16, let base = file.bytes(of: info).baseAddress {
            for (i, row) in range.enumerated() { y[i] = lk_dot_f16_f32(base + row * columns * 2, x, columns) }
            return
        }
        guard let k = blockKernels() else { return defaultDotRows(range, with: x, into: y) }
        if let rounded = roundedKernels() {
            return withRounded(x) { rounded.one(k.base + range.lowerBound * k.rowBytes, range.count, k.blocks, $0, y) }
        }
        k.one(k.base + range.lowerBound * k.rowBytes, range.count, k.blocks, x, y)
    }

    private typealias RoundedOneVectorKernel = @convention(c) (UnsafeRawPointer?, Int, Int, UnsafeRawPointer?, UnsafeMutablePointer<Float>?) -> Void
    private typealias RoundedManyVectorKernel = @convention(c) (UnsafeRawPointer?, Int, Int, UnsafeRawPointer?, Int,
                                                               UnsafeMutablePointer<Float>?, Int) -> Void

    /// The kernels over 8-bit activations (CKernels' `lk_matvec_*_q8`) of the block types that
    /// are most of a Q4_K_M file and whose f32 kernels are bound by turning codes into floats;
    /// Q8_0 (already at memory speed) and the others stay in f32.
    private func roundedKernels() -> (one: RoundedOneVectorKernel, many: RoundedManyVectorKernel)? {
        switch info.type {
        case .q5_0: return (lk_matvec_q5_0_q8, lk_matmul_q5_0_q8)
        case .q4_K: return (lk_matvec_q4_k_q8, lk_matmul_q4_k_q8)
        case .q6_K: return (lk_matvec_q6_k_q8, lk_matmul_q6_k_q8)
        default: return nil
        }
    }

    var roundsActivations: Bool { roundedKernels() != nil && blockKernels() != nil }

    /// x [columns] rounded to 8 bits (`lk_quantize_q8`) into scratch for `body`, once per product.
    private func withRounded(_ x: UnsafePointer<Float>, vectors: Int = 1, stride ldx: Int = 0,
                             _ body: (UnsafeRawPointer) -> Void) {
        let bytes = lk_q8_bytes(columns)
        withUnsafeTemporaryAllocation(byteCount: max(1, vectors * bytes), alignment: 16) { scratch in
            guard let base = scratch.baseAddress else { return }
            for v in 0..<vectors { lk_quantize_q8(x + v * ldx, columns, base + v * bytes) }
            body(UnsafeRawPointer(base))
        }
    }

    /// Q5_0, Q4_K and Q6_K round x once and run the 8-bit kernels over runs of rows on all
    /// cores; the rest is `forEachRowChunk` over `dotRows`.
    func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        guard let k = blockKernels(), let rounded = roundedKernels() else {
            return forEachRowChunk { dotRows($0, with: x, into: y + $0.lowerBound) }
        }
        withRounded(x) { xq in
            forEachRowChunk { range in rounded.one(k.base + range.lowerBound * k.rowBytes, range.count, k.blocks, xq, y + range.lowerBound) }
        }
    }

    /// Exact for every block type: the 8-bit many-vector kernels, or the f32 one-vector kernel
    /// vector by vector (a batched step's Q8_0 rows feed the 8-bit products of the next
    /// projection, where a last-bit difference can round a code the other way).
    func tokenDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                      into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        guard let k = blockKernels() else { return defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy) }
        guard vectors > 0, !range.isEmpty else { return }
        let first = k.base + range.lowerBound * k.rowBytes
        guard let rounded = roundedKernels() else {
            for v in 0..<vectors { k.one(first, range.count, k.blocks, x + v * ldx, y + v * ldy) }
            return
        }
        withRounded(x, vectors: vectors, stride: ldx) { xq in rounded.many(first, range.count, k.blocks, xq, vectors, y, ldy) }
    }

    /// The block types through the many-vector kernels (`lk_matmul_*`: each block decoded once
    /// for a tile of vectors); F16, F32 and BF16 vector by vector through `dotRows`.
    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                 into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        guard let k = blockKernels() else {
            return defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy)
        }
        k.many(k.base + range.lowerBound * k.rowBytes, range.count, k.blocks, x, vectors, ldx, y, ldy)
    }
}

extension GGUFWeightSource {
    /// What llama.cpp's converter adds to every norm scale of this family before writing it:
    /// Gemma's 1 (its RMSNorm multiplies by the stored weight; the model here keeps
    /// Hugging Face's `1 + w`), nothing for the others.
    public static func storedNormOffset(_ config: ModelConfig) -> Float? {
        config.family.isGemma ? 1 : nil
    }

    /// Whether the GGUF stores this projection's rows permuted for llama.cpp's RoPE (and by how
    /// many heads): Q and K of Llama-style architectures. Adapters exported to GGUF must put
    /// their B rows in that same order.
    public static func rotaryPermutedHeads(_ module: String, config: ModelConfig) -> Int? {
        guard config.family == .llama || config.family == .mistral else { return nil }
        if module.hasSuffix("self_attn.q_proj") { return config.headCount }
        if module.hasSuffix("self_attn.k_proj") { return config.kvHeadCount }
        return nil
    }

    /// GGUF row of Hugging Face row `row` in a matrix of `heads` rotary heads of `headRows` rows.
    public static func ggufRow(ofHuggingFaceRow row: Int, headRows: Int) -> Int {
        let half = headRows / 2, head = row / headRows, within = row % headRows
        return head * headRows + 2 * (within % half) + within / half
    }
}

/// Presents a GGUF Q or K matrix in Hugging Face row order: within each head of D rows,
/// Hugging Face row j·D/2 + i is GGUF row 2i + j.
struct RotaryRowOrder: QuantizedMatrix {
    let stored: any QuantizedMatrix
    let headRows: Int
    var rows: Int { stored.rows }
    var columns: Int { stored.columns }
    var encodedBytes: Int { stored.encodedBytes }
    var encodingName: String { stored.encodingName }

    init(_ stored: any QuantizedMatrix, heads: Int) {
        self.stored = stored
        headRows = stored.rows / max(heads, 1)
    }

    /// The stored matrix's product in its own row order (whole runs of rows through the block
    /// kernels), then y permuted: rows one at a time would lose the kernels' shared work.
    func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { stored in  // [rows], GGUF order
            guard let storedY = stored.baseAddress else { return }
            self.stored.matvec(x, into: storedY)
            for row in 0..<rows { y[row] = storedY[GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows)] }
        }
    }

    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        for (k, row) in range.enumerated() {
            let storedRow = GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows)
            stored.dotRows(storedRow..<(storedRow + 1), with: x, into: y + k)
        }
    }

    var roundsActivations: Bool { stored.roundsActivations }

    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                 into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        guard headRows > 0 else { return defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy) }
        wholeHeads(range, vectors: vectors, into: y, stride: ldy) { rows, storedY, span in
            stored.dotRows(rows, with: x, vectors: vectors, stride: ldx, into: storedY, stride: span)
        }
    }

    func tokenDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                      into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        guard headRows > 0 else { return defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy) }
        wholeHeads(range, vectors: vectors, into: y, stride: ldy) { rows, storedY, span in
            stored.tokenDotRows(rows, with: x, vectors: vectors, stride: ldx, into: storedY, stride: span)
        }
    }

    /// The stored rows of the whole heads that `range` touches in one many-vector `product` (a
    /// head's rows are a permutation of themselves), then each wanted row picked out.
    private func wholeHeads(_ range: Range<Int>, vectors: Int, into y: UnsafeMutablePointer<Float>, stride ldy: Int,
                            _ product: (Range<Int>, UnsafeMutablePointer<Float>, Int) -> Void) {
        guard !range.isEmpty, vectors > 0 else { return }
        let first = range.lowerBound / headRows * headRows
        let last = min(rows, (range.upperBound + headRows - 1) / headRows * headRows)
        let span = last - first
        withUnsafeTemporaryAllocation(of: Float.self, capacity: vectors * span) { buffer in  // [vectors, span], GGUF order
            guard let storedY = buffer.baseAddress else { return }
            product(first..<last, storedY, span)
            for (k, row) in range.enumerated() {
                let storedRow = GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows) - first
                for v in 0..<vectors { y[v * ldy + k] = storedY[v * span + storedRow] }
            }
        }
    }

    func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        for (k, row) in range.enumerated() {
            let storedRow = GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows)
            stored.decodeRows(storedRow..<(storedRow + 1), into: destination + k * columns)
        }
    }
}
