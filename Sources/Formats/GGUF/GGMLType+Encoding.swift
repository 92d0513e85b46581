import CKernels
import TensorCore

extension GGMLType {
    /// Whether `encode(_:columns:tensor:)` can write this type: the block types llama.cpp's
    /// Q4_K_M/Q5_K_M/Q6_K/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 files are made of, plus F32 and F16.
    public var isEncodable: Bool {
        switch self {
        case .f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// `values` ([rows, columns] row-major) in this type's ggml layout, byte for byte what
    /// ggml's reference quantizer (llama.cpp without an importance matrix) writes, so a merged
    /// model re-quantized by Lorikeet equals llama.cpp's own. Blocks are independent, so the
    /// work is split over `Parallel`'s threads by rows; `threads: 1` is the one-call twin the
    /// tests compare against. `tensor` names the tensor in the error when the width does not
    /// hold whole blocks or the type has no encoder.
    public func encode(_ values: UnsafeBufferPointer<Float>, columns: Int, tensor: String,
                       threads: Int? = nil) throws(FormatError) -> [UInt8] {
        guard isEncodable, let (elements, bytes) = blockGeometry else {
            throw .unsupportedDType(path: "(encoding)", tensor: tensor, dtype: name)
        }
        guard columns > 0, columns % elements == 0, values.count % columns == 0 else {
            throw .malformed(path: "(encoding)", reason: "tensor '\(tensor)': \(columns) columns do not hold whole \(name) blocks of \(elements) values")
        }
        let rows = values.count / columns, rowBytes = columns / elements * bytes
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        guard rows > 0, let source = values.baseAddress else { return out }
        let type = self
        out.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            let run = { (range: Range<Int>) in
                type.encodeRows(source + range.lowerBound * columns, rows: range.count, columns: columns,
                                into: base + range.lowerBound * rowBytes)
            }
            if threads == 1 { run(0..<rows) } else { Parallel.forChunks(rows, minChunk: 4, run) }
        }
        return out
    }

    /// One run of rows (a precondition-checked type and width; see `encode`).
    func encodeRows(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutableRawPointer) {
        let n = rows * columns
        switch self {
        case .f32:
            out.copyMemory(from: x, byteCount: n * 4)
        case .f16:
            let h = out.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { h[i] = lk_f32_to_f16(x[i]).littleEndian }
        case .q8_0: lk_quantize_q8_0(x, n / 32, out)
        case .q4_0: lk_quantize_q4_0(x, n / 32, out)
        case .q4_1: lk_quantize_q4_1(x, n / 32, out)
        case .q5_0: lk_quantize_q5_0(x, n / 32, out)
        case .q5_1: lk_quantize_q5_1(x, n / 32, out)
        case .q4_K: lk_quantize_q4_k(x, n / 256, out)
        case .q5_K: lk_quantize_q5_k(x, n / 256, out)
        case .q6_K: lk_quantize_q6_k(x, n / 256, out)
        default: preconditionFailure("GGMLType.encodeRows: \(name) has no encoder")
        }
    }
}
