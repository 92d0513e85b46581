import CKernels

/// Decodes ggml blocks to Float32, following ggml's block layouts (and its arithmetic: Float32
/// multiply, then add, so results equal the `gguf` Python package's bit for bit).
public enum GGUFDequantizer {
    /// Decodes `count` elements of `type` starting at element `first` (a multiple of the block
    /// size) from `bytes` (the whole tensor) into `out`. The block types go through the C
    /// kernels (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K); F32/F16/BF16 through
    /// `decodeNaive`, their tested twin.
    public static func decode(_ type: GGMLType, bytes: UnsafeRawBufferPointer, first: Int, count: Int,
                              into out: UnsafeMutablePointer<Float>) {
        guard let base = bytes.baseAddress, let (blockElements, blockBytes) = type.blockGeometry else {
            return decodeNaive(type, bytes: bytes, first: first, count: count, into: out)
        }
        let start = base + first / blockElements * blockBytes, blocks = count / blockElements
        switch type {
        case .q8_0: lk_dequant_q8_0(start, blocks, out)
        case .q4_0: lk_dequant_q4_0(start, blocks, out)
        case .q4_1: lk_dequant_q4_1(start, blocks, out)
        case .q5_0: lk_dequant_q5_0(start, blocks, out)
        case .q5_1: lk_dequant_q5_1(start, blocks, out)
        case .q4_K: lk_dequant_q4_k(start, blocks, out)
        case .q5_K: lk_dequant_q5_k(start, blocks, out)
        case .q6_K: lk_dequant_q6_k(start, blocks, out)
        default: decodeNaive(type, bytes: bytes, first: first, count: count, into: out)
        }
    }

    /// The plain Swift decoder of every supported type (the C kernels' twin).
    public static func decodeNaive(_ type: GGMLType, bytes: UnsafeRawBufferPointer, first: Int, count: Int,
                                   into out: UnsafeMutablePointer<Float>) {
        guard let (blockElements, blockBytes) = type.blockGeometry, type.isDecodable else {
            preconditionFailure("GGUFDequantizer: \(type.name) is not decodable (checked when the model loads)")
        }
        precondition(first % blockElements == 0 && count % blockElements == 0, "decode: range not block-aligned")
        guard let base = bytes.baseAddress else { return }
        let firstBlock = first / blockElements
        for b in 0..<(count / blockElements) {
            let block = base + (firstBlock + b) * blockBytes
            let y = out + b * blockElements
            switch type {
            case .f32:
                y[0] = Float(bitPattern: UInt32(littleEndian: block.loadUnaligned(as: UInt32.self)))
            case .f16:
                y[0] = half(block, 0)
            case .bf16:
                y[0] = Float(bitPattern: UInt32(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self))) << 16)
            case .q8_0:
                let d = half(block, 0)
                for j in 0..<32 { y[j] = Float(Int8(bitPattern: block.load(fromByteOffset: 2 + j, as: UInt8.self))) * d }
            case .q4_0:
                let d = half(block, 0)
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = Float(Int(q & 0x0F) - 8) * d
                    y[j + 16] = Float(Int(q >> 4) - 8) * d
                }
            case .q4_1:
                let d = half(block, 0), m = half(block, 2)
                for j in 0..<16 {
                    let q = block.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = Float(q & 0x0F) * d + m
                    y[j + 16] = Float(q >> 4) * d + m
                }
            case .q5_0:
                let d = half(block, 0)
                let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                for j in 0..<16 {
                    let q = UInt32(block.load(fromByteOffset: 6 + j, as: UInt8.self))
                    let lo = (q & 0x0F) | (((qh >> UInt32(j)) << 4) & 0x10)
                    let hi = (q >> 4) | ((qh >> UInt32(j + 12)) & 0x10)
                    y[j] = Float(Int(lo) - 16) * d
                    y[j + 16] = Float(Int(hi) - 16) * d
                }
            case .q5_1:
                let d = half(block, 0), m = half(block, 2)
                let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                for j in 0..<16 {
                    let q = UInt32(block.load(fromByteOffset: 8 + j, as: UInt8.self))
                    let lo = (q & 0x0F) | (((qh >> UInt32(j)) << 4) & 0x10)
                    let hi = (q >> 4) | ((qh >> UInt32(j + 12)) & 0x10)
                    y[j] = Float(lo) * d + m
                    y[j + 16] = Float(hi) * d + m
                }
            case .q4_K: decodeQ4K(block, y)
            case .q5_K: decodeQ5K(block, y)
            case .q6_K: decodeQ6K(block, y)
            default:
                preconditionFailure("unreachable: \(type.name)")
            }
        }
    }

    /// The 6-bit scale and minimum of sub-block `j` (0..<8) in a Q4_K/Q5_K block's 12 bytes.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (scale: Float, min: Float) {
        func b(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (Float(b(j) & 63), Float(b(j + 4) & 63)) }
        return (Float((b(j + 4) & 0x0F) | ((b(j - 4) >> 6) << 4)), Float((b(j + 4) >> 4) | ((b(j) >> 6) << 4)))
    }

    /// Q4_K: d, dmin (f16), 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes of
    /// nibbles; each 64-element chunk takes the low nibbles then the high nibbles of 32 bytes.
    static func decodeQ4K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0), dmin = half(block, 2)
        let scales = block + 4, qs = block + 16
        for chunk in 0..<4 {
            let (s1, m1) = scaleMin(2 * chunk, scales), (s2, m2) = scaleMin(2 * chunk + 1, scales)
            let (d1, min1, d2, min2) = (d * s1, dmin * m1, d * s2, dmin * m2)
            for l in 0..<32 {
                let q = qs.load(fromByteOffset: 32 * chunk + l, as: UInt8.self)
                y[64 * chunk + l] = d1 * Float(q & 0x0F) - min1
                y[64 * chunk + 32 + l] = d2 * Float(q >> 4) - min2
            }
        }
    }

    /// Q5_K: as Q4_K with a fifth bit per element from 32 bytes of high bits (two bit planes
    /// per 64-element chunk).
    static func decodeQ5K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 0), dmin = half(block, 2)
        let scales = block + 4, qh = block + 16, qs = block + 48
        for chunk in 0..<4 {
            let (s1, m1) = scaleMin(2 * chunk, scales), (s2, m2) = scaleMin(2 * chunk + 1, scales)
            let (d1, min1, d2, min2) = (d * s1, dmin * m1, d * s2, dmin * m2)
            let (u1, u2) = (UInt8(1) << (2 * chunk), UInt8(2) << (2 * chunk))
            for l in 0..<32 {
                let q = qs.load(fromByteOffset: 32 * chunk + l, as: UInt8.self), h = qh.load(fromByteOffset: l, as: UInt8.self)
                y[64 * chunk + l] = d1 * Float((q & 0x0F) + (h & u1 != 0 ? 16 : 0)) - min1
                y[64 * chunk + 32 + l] = d2 * Float((q >> 4) + (h & u2 != 0 ? 16 : 0)) - min2
            }
        }
    }

    /// Q6_K: 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, d (f16);
    /// two halves of 128 elements, each element (6 bits) − 32 times d·scale.
    static func decodeQ6K(_ block: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(block, 208)
        for part in 0..<2 {
            let ql = block + 64 * part, qh = block + 128 + 32 * part, sc = block + 192 + 8 * part
            let out = y + 128 * part
            func scale(_ i: Int) -> Float { Float(Int8(bitPattern: sc.load(fromByteOffset: i, as: UInt8.self))) }
            for l in 0..<32 {
                let s = l / 16
                let a = ql.load(fromByteOffset: l, as: UInt8.self), b = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                let h = qh.load(fromByteOffset: l, as: UInt8.self)
                let q1 = Int((a & 0x0F) | ((h & 3) << 4)) - 32
                let q2 = Int((b & 0x0F) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int((a >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int((b >> 4) | (((h >> 6) & 3) << 4)) - 32
                out[l] = d * scale(s) * Float(q1)
                out[l + 32] = d * scale(s + 2) * Float(q2)
                out[l + 64] = d * scale(s + 4) * Float(q3)
                out[l + 96] = d * scale(s + 6) * Float(q4)
            }
        }
    }

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }
}
