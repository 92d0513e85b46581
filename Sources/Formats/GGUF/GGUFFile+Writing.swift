import Foundation
import TensorCore

/// One tensor ready for a GGUF file: its shape in row-major order ([rows, columns] or [n]),
/// its ggml type and the already encoded bytes.
public struct GGUFTensorPayload: Sendable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType
    public let bytes: [UInt8]

    public init(name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) {
        self.name = name
        self.shape = shape
        self.type = type
        self.bytes = bytes
    }

    /// Float32 values as an F32 tensor.
    public init(name: String, f32 tensor: Tensor) {
        var bytes = [UInt8]()
        bytes.reserveCapacity(tensor.count * 4)
        tensor.withUnsafeBufferPointer { values in
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        }
        self.init(name: name, shape: tensor.shape, type: .f32, bytes: bytes)
    }
}

extension GGUFFile {
    /// Writes a GGUF v3 file atomically: `metadata` in the given order, then F32 tensors
    /// [rows, columns] (stored with ggml's dims [columns, rows]) aligned to `alignment`.
    /// The reader above reads it back; llama.cpp's loader reads the same layout.
    public static func write(metadata: [(String, GGUFValue)], tensors: [(name: String, tensor: Tensor)],
                             alignment: Int = 32, to path: String) throws(FormatError) {
        try write(metadata: metadata, encoded: tensors.map { GGUFTensorPayload(name: $0.name, f32: $0.tensor) }, alignment: alignment, to: path)
    }

    /// Writes a GGUF v3 file atomically with tensors already encoded in any ggml type whose
    /// block geometry is known; each payload's size is checked against its shape and type.
    public static func write(metadata: [(String, GGUFValue)], encoded tensors: [GGUFTensorPayload],
                             alignment: Int = 32, to path: String) throws(FormatError) {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        func typeCode(_ v: GGUFValue) -> UInt32 {
            switch v {
            case .uint8: return 0
            case .int8: return 1
            case .uint16: return 2
            case .int16: return 3
            case .uint32: return 4
            case .int32: return 5
            case .float32: return 6
            case .bool: return 7
            case .string: return 8
            case .array: return 9
            case .uint64: return 10
            case .int64: return 11
            case .float64: return 12
            }
        }
        func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint64(let x): u64(x)
            case .int64(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .array(let items):
                u32(items.first.map(typeCode) ?? 4)
                u64(UInt64(items.count))
                for item in items { value(item) }
            }
        }
        for (_, v) in metadata {
            if case .array(let items) = v, let first = items.first, items.contains(where: { typeCode($0) != typeCode(first) }) {
                throw .malformed(path: path, reason: "a metadata array mixes value types")
            }
        }
        var kv = metadata
        if alignment != 32 { kv.append(("general.alignment", .uint32(UInt32(alignment)))) }
        u32(0x4655_4747)  // "GGUF"
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(kv.count))
        for (key, v) in kv {
            string(key)
            u32(typeCode(v))
            value(v)
        }
        var offset = 0
        for t in tensors {
            guard t.shape.count == 2 || t.shape.count == 1 else { throw .malformed(path: path, reason: "tensor '\(t.name)': rank \(t.shape.count) (1 or 2 supported)") }
            guard let (blockElements, blockBytes) = t.type.blockGeometry, let columns = t.shape.last, columns % blockElements == 0,
                  t.bytes.count == t.shape.reduce(1, *) / blockElements * blockBytes else {
                throw .malformed(path: path, reason: "tensor '\(t.name)': \(t.bytes.count) bytes do not hold \(t.shape) in \(t.type.name)")
            }
            string(t.name)
            u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { u64(UInt64(d)) }  // ggml order: the fastest dimension first
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        out.append(contentsOf: [UInt8](repeating: 0, count: (alignment - out.count % alignment) % alignment))
        for t in tensors {
            out.append(contentsOf: t.bytes)
            out.append(contentsOf: [UInt8](repeating: 0, count: (alignment - t.bytes.count % alignment) % alignment))
        }
        try AtomicFile.write(out, to: path)
    }
}
