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
