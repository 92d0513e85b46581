import CKernels
import TensorCore

/// ggml's Q4_0 encoding: blocks of 32 values, one Float16 scale and 16 bytes of 4-bit codes
/// (value i in the low nibble of byte i, value i + 16 in the high nibble) — 4.5 bits per weight.
/// Written by `lorikeet merge --format gguf --quant q4_0`; bit-identical to the `gguf` package.
public struct Q4_0Matrix: QuantizedMatrix {
    public static let blockSize = 32
    static let blockBytes = 18  // Float16 scale + 16 bytes of nibbles
    public let rows: Int, columns: Int
    /// ggml block layout, row after row.
    public let blocks: [UInt8]

    public init(rows: Int, columns: Int, blocks: [UInt8]) {
        precondition(columns % Self.blockSize == 0, "Q4_0Matrix: \(columns) columns are not a multiple of \(Self.blockSize)")
        precondition(blocks.count == rows * columns / Self.blockSize * Self.blockBytes, "Q4_0Matrix: \(blocks.count) bytes do not hold \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.blocks = blocks
    }

    /// Quantizes [rows, columns] (columns a multiple of 32) as ggml's reference quantizer does:
    /// m = the value of largest magnitude (the first one on ties), d = m / −8, and each code
    /// q = min(15, trunc(x · (1/d) + 8.5)) with d and 1/d in Float32; d is stored as Float16.
    public init(quantizing tensor: Tensor) {
        precondition(tensor.rank == 2, "Q4_0Matrix: expects [rows, columns], got \(tensor.shape)")
        let count = tensor.count / Self.blockSize
        var bytes = [UInt8](repeating: 0, count: count * Self.blockBytes)
        tensor.withUnsafeBufferPointer { x in
            for b in 0..<count {
                let lo = b * Self.blockSize
                var amax: Float = 0, extreme: Float = 0
                for i in lo..<(lo + Self.blockSize) where abs(x[i]) > amax {
                    amax = abs(x[i])
                    extreme = x[i]
                }
                let d = extreme / -8, inverse: Float = d == 0 ? 0 : 1 / d
                let bits = Float16(d).bitPattern, out = b * Self.blockBytes
                bytes[out] = UInt8(bits & 0xFF)
                bytes[out + 1] = UInt8(bits >> 8)
                func code(_ v: Float) -> UInt8 { UInt8(min(15, max(0, (v * inverse + 8.5).rounded(.towardZero)))) }
                for i in 0..<(Self.blockSize / 2) {
                    bytes[out + 2 + i] = code(x[lo + i]) | code(x[lo + i + Self.blockSize / 2]) << 4
                }
            }
        }
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], blocks: bytes)
    }

    public var encodedBytes: Int { blocks.count }
    public var encodingName: String { "q4_0" }

    public func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let blocksPerRow = columns / Self.blockSize
        blocks.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            lk_dequant_q4_0(base + range.lowerBound * blocksPerRow * Self.blockBytes, range.count * blocksPerRow, destination)
        }
    }
}
