import CKernels
import TensorCore

/// ggml's Q8_0 encoding: blocks of 32 values, one Float16 scale (absmax/127) and 32 signed
/// bytes each — 8.5 bits per weight. The base precision `q8_0`, and bit-identical to what
/// llama.cpp and the `gguf` package write, so a Q8_0 base can be exported without re-encoding.
public struct Q8_0Matrix: QuantizedMatrix {
    public static let blockSize = 32
    static let blockBytes = 34  // Float16 scale + 32 × Int8
    public let rows: Int, columns: Int
    /// ggml block layout, row after row.
    public let blocks: [UInt8]

    public init(rows: Int, columns: Int, blocks: [UInt8]) {
        precondition(columns % Self.blockSize == 0, "Q8_0Matrix: \(columns) columns are not a multiple of \(Self.blockSize)")
        precondition(blocks.count == rows * columns / Self.blockSize * Self.blockBytes, "Q8_0Matrix: \(blocks.count) bytes do not hold \(rows)×\(columns)")
        self.rows = rows
        self.columns = columns
        self.blocks = blocks
    }

    /// Quantizes [rows, columns] (columns a multiple of 32) as ggml's reference quantizer does:
    /// d = absmax/127 rounded to Float16, q = round-half-away(x · (1/d)) with the Float32 d.
    public init(quantizing tensor: Tensor) {
        precondition(tensor.rank == 2, "Q8_0Matrix: expects [rows, columns], got \(tensor.shape)")
        let n = tensor.count, count = n / Self.blockSize
        var bytes = [UInt8](repeating: 0, count: count * Self.blockBytes)
        tensor.withUnsafeBufferPointer { x in
            for b in 0..<count {
                let lo = b * Self.blockSize
                var amax: Float = 0
                for i in lo..<(lo + Self.blockSize) { amax = max(amax, abs(x[i])) }
                let d = amax / 127, inverse: Float = d == 0 ? 0 : 1 / d
                let bits = Float16(d).bitPattern
                bytes[b * Self.blockBytes] = UInt8(bits & 0xFF)
                bytes[b * Self.blockBytes + 1] = UInt8(bits >> 8)
                for i in 0..<Self.blockSize {
                    bytes[b * Self.blockBytes + 2 + i] = UInt8(bitPattern: Int8((x[lo + i] * inverse).rounded()))
                }
            }
        }
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], blocks: bytes)
    }

    public var encodedBytes: Int { blocks.count }
    public var encodingName: String { "q8_0" }

    public func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let blocksPerRow = columns / Self.blockSize
        blocks.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            lk_dequant_q8_0(base + range.lowerBound * blocksPerRow * Self.blockBytes, range.count * blocksPerRow, destination)
        }
    }
}
