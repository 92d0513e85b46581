import CKernels
import TensorCore

/// A frozen weight matrix [rows, columns] kept in a compact encoding (GGUF blocks, NF4, …)
/// that can decode any run of whole rows to Float32.
///
/// Layers never hold the decoded matrix: they decode a panel of rows into scratch right
/// before each GEMM and drop it after, so memory stays near the encoded size.
public protocol QuantizedMatrix: Sendable {
    var rows: Int { get }
    var columns: Int { get }
    /// Bytes the encoded matrix occupies (for memory reports and `inspect`).
    var encodedBytes: Int { get }
    /// A short name of the encoding ("q4_1", "nf4", "f32", …).
    var encodingName: String { get }
    /// Decodes rows `range` into `destination` ([range.count, columns], row-major).
    func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>)
}

/// Plain Float32 rows: the identity encoding (base precision `f32`, and the naive twin that
/// tests compare every real encoding's layers against).
public struct DenseMatrix: QuantizedMatrix {
    public let rows: Int, columns: Int
    let storage: TensorStorage  // [rows, columns]

    public init(_ tensor: Tensor) {
        precondition(tensor.rank == 2, "DenseMatrix: expects [rows, columns], got \(tensor.shape)")
        rows = tensor.shape[0]
        columns = tensor.shape[1]
        storage = tensor.storage
    }

    public var encodedBytes: Int { rows * columns * MemoryLayout<Float>.stride }
    public var encodingName: String { "f32" }

    public func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: storage.base + range.lowerBound * columns, count: range.count * columns)
    }
}

extension QuantizedMatrix {
    /// y = W·x for one input vector x [columns] → y [rows], the decode-time product: rows are
    /// decoded a few at a time into a scratch that stays in L1 and dotted with x at once, on
    /// all cores, so the encoded weights are read once and no decoded panel reaches memory.
    /// Its naive twin is a decoded panel times x through BLAS (QuantizedLinear's GEMM path).
    public func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let c = columns, step = max(1, 4096 / max(c, 1))  // ≤ 16 KiB of decoded rows
        Parallel.forChunks(rows, minChunk: 64) { range in
            let scratch = TensorStorage(count: step * c)  // [step, C]
            for r0 in stride(from: range.lowerBound, to: range.upperBound, by: step) {
                let n = min(step, range.upperBound - r0)
                decodeRows(r0..<(r0 + n), into: scratch.base)
                for i in 0..<n { y[r0 + i] = lk_dot_f32(scratch.base + i * c, x, c) }
            }
        }
    }
}
