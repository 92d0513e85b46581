/// Decodes ggml blocks to Float32, following ggml's block layouts (and its arithmetic: Float32
/// multiply, then add, so results equal the `gguf` Python package's bit for bit).
public enum GGUFDequantizer {
    /// Decodes `count` elements of `type` starting at element `first` (a multiple of the block
    /// size) from `bytes` (the whole tensor) into `out`.
    public static func decode(_ type: GGMLType, bytes: UnsafeRawBufferPointer, first: Int, count: Int,
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
            default:
                preconditionFailure("unreachable: \(type.name)")
            }
        }
    }

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }
}
