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
    /// y[i] = row(range.lowerBound + i) · x for each row in `range` (x: [columns]). Encodings
    /// with a fused kernel read their blocks directly; the default decodes a few rows at a time.
    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>)
    /// `dotRows` for `vectors` inputs at once, the batched decode step's product: y[v·ldy + i]
    /// = row(range.lowerBound + i) · x[v·ldx ..< v·ldx + columns]. Encodings with a fused kernel
    /// decode each block once for several vectors; the default runs `dotRows` vector by vector
    /// (and is the fused kernels' twin).
    func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                 into y: UnsafeMutablePointer<Float>, stride ldy: Int)
    /// y = W·x over all rows (x: [columns], y: [rows]). The default splits `dotRows` over the
    /// cores; a view that reorders another matrix's rows multiplies the stored order in one
    /// piece and reorders y.
    func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>)
    /// Whether the one-vector products (`matvec`, `dotRows` of one vector) round x to 8 bits
    /// per 32 values first, llama.cpp's integer path (GGUF Q5_0, Q4_K and Q6_K): they then differ
    /// from the many-vector and panel products by x's rounding, not only by float order.
    var roundsActivations: Bool { get }
    /// The products of tokens being generated, several sequences' at once, each vector's y
    /// equal to the one-vector `dotRows` of it (`matvec`'s rows) bit for bit, so that a batched
    /// decode step gives each sequence what decoding it alone gives. The default runs `dotRows`
    /// vector by vector.
    func tokenDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                      into y: UnsafeMutablePointer<Float>, stride ldy: Int)
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
    /// y = W·x for one input vector x [columns] → y [rows], the decode-time product, on all
    /// cores through the spinning pool (a product takes microseconds): each encoding's `dotRows` reads the encoded weights once and no decoded panel
    /// reaches memory. Its naive twin is a decoded panel times x through BLAS (QuantizedLinear's
    /// GEMM path).
    public func matvec(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        forEachRowChunk { dotRows($0, with: x, into: y + $0.lowerBound) }
    }

    /// `body` over runs of rows on all cores through the spinning pool, a few runs per thread
    /// (whoever is on a core takes the next one); one run of all rows for a small matrix.
    public func forEachRowChunk(_ body: (Range<Int>) -> Void) {
        let chunks = min(4 * SpinPool.shared.threads, rows / 32)
        guard chunks > 1 else { return body(0..<rows) }
        SpinPool.shared.run(chunks: chunks) { chunk in
            let lo = rows * chunk / chunks, hi = rows * (chunk + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    public var roundsActivations: Bool { false }

    public func tokenDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                             into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy)
    }

    public func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        defaultDotRows(range, with: x, into: y)
    }

    public func dotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                        into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        defaultDotRows(range, with: x, vectors: vectors, stride: ldx, into: y, stride: ldy)
    }

    /// One vector at a time through `dotRows`: any encoding's many-vector product, and the
    /// fused many-vector kernels' twin.
    public func defaultDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, vectors: Int, stride ldx: Int,
                               into y: UnsafeMutablePointer<Float>, stride ldy: Int) {
        for v in 0..<vectors { dotRows(range, with: x + v * ldx, into: y + v * ldy) }
    }

    /// Decodes rows into a scratch that stays in L1 and dots them with x: any encoding's
    /// `dotRows`, and the fused kernels' twin.
    public func defaultDotRows(_ range: Range<Int>, with x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let c = columns, step = max(1, 4096 / max(c, 1))  // ≤ 16 KiB of decoded rows
        let scratch = TensorStorage(count: min(step, range.count) * c)  // [step, C]
        for r0 in stride(from: range.lowerBound, to: range.upperBound, by: step) {
            let n = min(step, range.upperBound - r0)
            decodeRows(r0..<(r0 + n), into: scratch.base)
            for i in 0..<n { y[r0 - range.lowerBound + i] = lk_dot_f32(scratch.base + i * c, x, c) }
        }
    }
}
