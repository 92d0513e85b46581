import Formats

/// The encodings a merged GGUF can be written in: one type for every matrix (f32, f16, q8_0,
/// q4_0, q4_1, q5_0, q5_1, q6_k), llama.cpp's Q4_K_M/Q5_K_M mixes, or `source` (each tensor in
/// the base file's type). Quantized choices follow llama.cpp's per-tensor rules (its
/// `llama_tensor_get_type`), so the merged file equals what `llama-quantize` makes of
/// Lorikeet's F16 merge, tensor for tensor.
public enum GGUFMergeEncoding: String, CaseIterable, Sendable {
    case f32, f16, q8_0, q4_0, q4_1, q5_0, q5_1
    case q6_K = "q6_k", q4_K_M = "q4_k_m", q5_K_M = "q5_k_m"
    case source

    /// Case-insensitive (`Q4_K_M`, `q4_k_m`).
    public init?(name: String) { self.init(rawValue: name.lowercased()) }

    /// The type of most matrices (llama.cpp's `llama_ftype_get_default_type`); nil for `source`.
    var defaultType: GGMLType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q5_0: return .q5_0
        case .q5_1: return .q5_1
        case .q6_K: return .q6_K
        case .q4_K_M: return .q4_K
        case .q5_K_M: return .q5_K
        case .source: return nil
        }
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_*); nil for `source` (the base's is kept).
    var fileType: UInt32? {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q5_1: return 9
        case .q4_K_M: return 15
        case .q5_K_M: return 17
        case .q6_K: return 18
        case .source: return nil
        }
    }

    /// The type each of `tensors` (the base's directory) is written in. llama.cpp visits
    /// tensors layer by layer (whatever the file's order, which is lexicographic in some
    /// files: blk.0, blk.1, blk.10, …), so a layer's attn_v/ffn_down is judged by its index.
    ///
    /// As llama.cpp's quantizer: 1-D tensors, norms and names not ending in `weight` keep F32;
    /// the output matrix — or a tied token_embd when there is none — becomes Q6_K (Q8_0 when
    /// its width is not a multiple of the default type's block, or for q8_0 itself); for
    /// Q4_K_M/Q5_K_M, attn_v and ffn_down in the layers `useMoreBits` picks become Q6_K; a
    /// width that a 256-block type does not divide falls back (Q4_K → Q5_0, Q5_K → Q5_1,
    /// Q6_K → Q8_0), and F16 when even 32 does not divide it. `source` keeps the base's type,
    /// F16 for types Lorikeet cannot encode and F32 for 1-D tensors.
    func tensorTypes(_ tensors: [GGUFFile.TensorInfo]) -> [GGMLType] {
        tensorTypes(tensors.map { (name: $0.name, dimensions: $0.dimensions, type: $0.type) })
    }

    /// The same from names, ggml dimensions (`[columns, rows]` for a matrix) and stored types.
    func tensorTypes(_ tensors: [(name: String, dimensions: [Int], type: GGMLType)]) -> [GGMLType] {
        guard let defaultType else {
            return tensors.map { info in
                if info.dimensions.count < 2 { return .f32 }
                return info.type.isEncodable && Self.divides(info.type, info.dimensions[0]) ? info.type : .f16
            }
        }
        let names = tensors.map(\.name)
        let attentionV = names.filter { $0.contains("attn_v.weight") || $0.contains("attn_qkv.weight") || $0.contains("attn_kv_b.weight") }.count
        let tied = !names.contains("output.weight")
        let layers = Set(names.compactMap(Self.layerIndex)).count
        var iAttentionV = 0, iFFNDown = 0
        return tensors.map { info in
            let name = info.name, columns = info.dimensions.first ?? 0
            guard info.dimensions.count >= 2, name.hasSuffix("weight"), !name.contains("_norm.weight") else { return .f32 }
            guard defaultType != .f32, defaultType != .f16 else { return defaultType }
            var type = defaultType
            if name == "output.weight" || (tied && name == "token_embd.weight") {
                if columns % (defaultType.blockGeometry?.elements ?? 1) != 0 { type = .q8_0 }
                else if type != .q8_0 { type = .q6_K }
            } else if name == "token_embd.weight" {
                // the default type
            } else if name.contains("attn_v.weight") || name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight") {
                // llama.cpp counts these in its loading order, by layer: the layer index when named.
                let index = Self.layerIndex(name) ?? iAttentionV
                if self == .q4_K_M || self == .q5_K_M, Self.useMoreBits(index, attentionV) { type = .q6_K }
                iAttentionV += 1
            } else if name.contains("ffn_down") {
                let index = Self.layerIndex(name) ?? iFFNDown
                if self == .q4_K_M || self == .q5_K_M, Self.useMoreBits(index, layers) { type = .q6_K }
                iFFNDown += 1
            }
            return Self.fallback(type, columns: columns)
        }
    }

    /// llama.cpp's choice of layers that get more bits: the first and last eighth, and every
    /// third layer in between.
    static func useMoreBits(_ layer: Int, _ layers: Int) -> Bool {
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
    }

    /// llama.cpp's `tensor_type_fallback` for a width the type's block does not divide.
    static func fallback(_ type: GGMLType, columns: Int) -> GGMLType {
        guard !divides(type, columns) else { return type }
        let next: GGMLType = switch type {
        case .q4_K: .q5_0
        case .q5_K: .q5_1
        case .q6_K: .q8_0
        default: type
        }
        return divides(next, columns) ? next : .f16
    }

    static func divides(_ type: GGMLType, _ columns: Int) -> Bool {
        columns % (type.blockGeometry?.elements ?? 1) == 0
    }

    /// N in `blk.N.…`.
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        return Int(name.dropFirst(4).prefix { $0 != "." })
    }
}
