import CKernels
import TensorCore

/// A weight matrix [rows, columns] in bitsandbytes' NF4 layout: the row-major elements in
/// blocks of 64, each block scaled by its absolute maximum and rounded to the nearest NF4
/// value; two codes per byte, the even element in the high nibble. With double quantization
/// (QLoRA's default) the per-block scales are themselves stored in 8 bits: minus their mean,
/// blocks of 256 scaled by their absolute maximum, rounded on the dynamic map.
///
/// About 0.516 bytes per weight with double quantization (4 bits + 8 bits / 64 + 32 bits /
/// 16384), against 4 for Float32.
public struct NF4Matrix: QuantizedMatrix {
    public static let blockSize = 64
    public static let scaleBlockSize = 256

    /// How the per-block scales are stored.
    public enum Scales: Sendable, Equatable {
        case float([Float])                                            // [blocks]
        case doubleQuantized(codes: [UInt8], scales: [Float], offset: Float)  // [blocks], [⌈blocks/256⌉]
    }

    public let rows: Int, columns: Int
    /// ⌈rows·columns / 2⌉ bytes.
    public let packed: [UInt8]
    public let scales: Scales

    public init(rows: Int, columns: Int, packed: [UInt8], scales: Scales) {
        let n = rows * columns, blocks = (n + Self.blockSize - 1) / Self.blockSize
        precondition(packed.count == (n + 1) / 2, "NF4Matrix: \(packed.count) bytes for \(n) weights")
        switch scales {
        case .float(let s): precondition(s.count == blocks, "NF4Matrix: \(s.count) scales for \(blocks) blocks")
        case .doubleQuantized(let c, let s, _):
            precondition(c.count == blocks && s.count == (blocks + Self.scaleBlockSize - 1) / Self.scaleBlockSize,
                         "NF4Matrix: double-quantized scales do not match \(blocks) blocks")
        }
        self.rows = rows
        self.columns = columns
        self.packed = packed
        self.scales = scales
    }

    public var encodedBytes: Int {
        switch scales {
        case .float(let s): return packed.count + 4 * s.count
        case .doubleQuantized(let c, let s, _): return packed.count + c.count + 4 * s.count + 4
        }
    }

    public var encodingName: String { "nf4" }

    /// Scale of block `b` (decoding the 8-bit scale when double-quantized).
    @inline(__always)
    func scale(ofBlock b: Int) -> Float {
        switch scales {
        case .float(let s): return s[b]
        case .doubleQuantized(let codes, let s, let offset):
            return DynamicMap.values[Int(codes[b])] * s[b / Self.scaleBlockSize] + offset
        }
    }

    public func decodeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        decodeElements((range.lowerBound * columns)..<(range.upperBound * columns), into: destination)
    }

    /// Decodes elements `range` of the flattened matrix (`lk_decode_nf4_f32`: a codebook
    /// lookup per nibble times its block's scale), split over the cores: a layer decodes a
    /// panel before each GEMM, and a serial decode left the other core idle.
    public func decodeElements(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        let firstBlock = range.lowerBound / Self.blockSize
        let blocks = (range.upperBound - 1) / Self.blockSize - firstBlock + 1
        packed.withUnsafeBufferPointer { bytes in
            NF4Codebook.values.withUnsafeBufferPointer { codebook in
                guard let bytes = bytes.baseAddress, let codebook = codebook.baseAddress else { return }
                Parallel.forChunks(blocks, minChunk: 256) { part in
                    let lo = max(range.lowerBound, (firstBlock + part.lowerBound) * Self.blockSize)
                    let hi = min(range.upperBound, (firstBlock + part.upperBound) * Self.blockSize)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: part.count) { scales in
                        for b in part { scales[b - part.lowerBound] = scale(ofBlock: firstBlock + b) }
                        if let s = scales.baseAddress {
                            lk_decode_nf4_f32(bytes, lo, hi - lo, codebook, s, destination + (lo - range.lowerBound))
                        }
                    }
                }
            }
        }
    }
}

extension NF4Matrix {
    /// Quantizes a Float32 matrix [rows, columns] the way bitsandbytes' quantize_4bit does.
    public init(quantizing tensor: Tensor, doubleQuantize: Bool = true) {
        precondition(tensor.rank == 2, "NF4Matrix: expects [rows, columns], got \(tensor.shape)")
        let n = tensor.count, blocks = (n + Self.blockSize - 1) / Self.blockSize
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        var absmax = [Float](repeating: 0, count: blocks)
        tensor.withUnsafeBufferPointer { x in
            for b in 0..<blocks {
                let lo = b * Self.blockSize, hi = min(lo + Self.blockSize, n)
                var m: Float = 0
                for i in lo..<hi { m = max(m, abs(x[i])) }
                let full = hi - lo == Self.blockSize
                // bitsandbytes multiplies full blocks by the reciprocal but divides the tail.
                let clamped = max(m, 1e-38), reciprocal = 1 / clamped
                absmax[b] = full ? m : clamped
                for i in lo..<hi {
                    let scaled = min(max(full ? x[i] * reciprocal : x[i] / clamped, -1), 1)
                    let code = NF4Codebook.code(of: scaled)
                    packed[i >> 1] |= (i & 1) == 0 ? code << 4 : code
                }
            }
        }
        // An odd count pads the last low nibble with the code of 0.
        if n % 2 == 1 { packed[n >> 1] |= NF4Codebook.code(of: 0) }
        let scales: Scales = doubleQuantize ? Self.doubleQuantizedScales(absmax) : .float(absmax)
        self.init(rows: tensor.shape[0], columns: tensor.shape[1], packed: packed, scales: scales)
    }

    /// The scales minus their mean, in blocks of 256 on the 8-bit dynamic map.
    ///
    /// The mean is the exactly rounded one. bitsandbytes takes torch's Float32 mean, whose
    /// summation order follows the CPU's vector width, so its last bit can differ from ours
    /// (and between machines); pass `offset` to reproduce a given bitsandbytes state exactly.
    public static func doubleQuantizedScales(_ absmax: [Float], offset: Float? = nil) -> Scales {
        let offset = offset ?? Float(absmax.reduce(0.0) { $0 + Double($1) } / Double(max(absmax.count, 1)))
        let centred = absmax.map { $0 - offset }
        var codes = [UInt8](repeating: 0, count: centred.count)
        var scales: [Float] = []
        for lo in stride(from: 0, to: centred.count, by: scaleBlockSize) {
            let hi = min(lo + scaleBlockSize, centred.count)
            var m: Float = 0
            for i in lo..<hi { m = max(m, abs(centred[i])) }
            scales.append(m)
            // An all-zero block divides 0 by 0 in bitsandbytes and its search stops at code 0;
            // the value decodes to the offset either way, since the block's scale is 0.
            for i in lo..<hi { codes[i] = m > 0 ? DynamicMap.code(of: centred[i] / m) : 0 }
        }
        return .doubleQuantized(codes: codes, scales: scales, offset: offset)
    }
}
