/// ggml's tensor element types, with the block geometry of those Lorikeet can decode.
/// Numbers are ggml's (`ggml_type`); the rest are named so errors can say what a file holds.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    public var name: String { String(describing: self).uppercased() }

    /// (elements per block, bytes per block) for types whose layout Lorikeet knows.
    public var blockGeometry: (elements: Int, bytes: Int)? {
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 18)
        case .q4_1: return (32, 20)
        case .q5_0: return (32, 22)
        case .q5_1: return (32, 24)
        case .q8_0: return (32, 34)
        case .q8_1: return (32, 36)
        case .q2_K: return (256, 84)
        case .q3_K: return (256, 110)
        case .q4_K: return (256, 144)
        case .q5_K: return (256, 176)
        case .q6_K: return (256, 210)
        case .q8_K: return (256, 292)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        default: return nil
        }
    }

    /// What to do about a tensor of a type Lorikeet cannot decode (IQ*, Q2_K, Q3_K, …): the
    /// types it does decode, and the two ways to get a file made of them.
    public static let decodableAdvice = "Lorikeet decodes F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K: "
        + "use the model's Q4_K_M, Q5_K_M, Q6_K or Q8_0 file, or requantize this one to one of those types "
        + "(llama.cpp: llama-quantize --allow-requantize IN.gguf OUT.gguf Q4_K_M)"

    /// Whether `GGUFDequantizer` can decode this type to Float32.
    public var isDecodable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }
}
