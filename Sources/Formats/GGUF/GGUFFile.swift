/// A GGUF file (versions 2 and 3), memory-mapped: header, metadata, tensor directory, and the
/// tensors' bytes read in place.
///
/// Everything in the header comes from a stranger, so every count, length, dimension, offset
/// and size is checked against the file and against overflow before it is used; a damaged file
/// is a `FormatError` naming the file and the key or tensor, never a crash or a wild read.
public final class GGUFFile: @unchecked Sendable {
    public struct TensorInfo: Sendable {
        public let name: String
        /// ggml order: dimensions[0] varies fastest (a row of a matrix).
        public let dimensions: [Int]
        public let type: GGMLType
        /// Absolute byte range in the file.
        public let range: Range<Int>
        public var elementCount: Int { dimensions.reduce(1, *) }
        /// Row-major shape, outermost first (a matrix is [rows, columns]).
        public var shape: [Int] { dimensions.reversed() }
    }

    public let path: String
    public let version: UInt32
    /// Keys in file order, and their values.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [TensorInfo]
    public let alignment: Int
    let tensorIndex: [String: Int]
    let file: MappedFileRegion

    static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    static let maxDimensions = 4
    static let maxArrayDepth = 4

    public init(path: String) throws(FormatError) {
        self.path = path
        file = try MappedFileRegion(path: path)
        var reader = GGUFReader(file: file, path: path)
        guard try reader.u32("the magic number") == Self.magic else {
            throw .malformed(path: path, reason: "not a GGUF file (wrong magic number)")
        }
        version = try reader.u32("the version")
        guard version == 2 || version == 3 else {
            throw .malformed(path: path, reason: "GGUF version \(version) is not supported (Lorikeet reads versions 2 and 3)")
        }
        let tensorCount = try reader.count("the tensor count", minimumBytesEach: 24)
        let keyCount = try reader.count("the metadata count", minimumBytesEach: 12)

        var keys: [String] = [], values: [String: GGUFValue] = [:]
        for _ in 0..<keyCount {
            let key = try reader.string("a metadata key")
            let type = try reader.u32("the type of '\(key)'")
            guard values[key] == nil else { throw .malformed(path: path, reason: "metadata key '\(key)' appears twice") }
            values[key] = try reader.value(type: type, key: key, depth: 0)
            keys.append(key)
        }
        metadataKeys = keys
        metadata = values
        let alignment = values["general.alignment"]?.int ?? 32
        guard alignment > 0, alignment <= 1 << 20, alignment & (alignment - 1) == 0 else {
            throw .malformed(path: path, reason: "general.alignment \(alignment) is not a power of two up to 1 MiB")
        }
        self.alignment = alignment

        struct Pending { let name: String; let dims: [Int]; let type: GGMLType; let offset: Int; let bytes: Int }
        var pending: [Pending] = []
        var index: [String: Int] = [:]
        for _ in 0..<tensorCount {
            let name = try reader.string("a tensor name")
            guard index[name] == nil else { throw .malformed(path: path, reason: "tensor '\(name)' appears twice") }
            let rank = Int(try reader.u32("the rank of '\(name)'"))
            guard rank >= 1, rank <= Self.maxDimensions else {
                throw .malformed(path: path, reason: "tensor '\(name)' has \(rank) dimensions (1 to \(Self.maxDimensions) allowed)")
            }
            var dims: [Int] = []
            var elements = 1
            for _ in 0..<rank {
                let raw = try reader.u64("a dimension of '\(name)'")
                guard raw > 0, raw < UInt64(Int.max), case let (product, overflow) = elements.multipliedReportingOverflow(by: Int(raw)), !overflow else {
                    throw .malformed(path: path, reason: "tensor '\(name)': dimensions overflow or are zero")
                }
                dims.append(Int(raw))
                elements = product
            }
            let typeNumber = try reader.u32("the type of '\(name)'")
            guard let type = GGMLType(rawValue: typeNumber) else {
                throw .malformed(path: path, reason: "tensor '\(name)' has unknown ggml type \(typeNumber); this file may need a newer Lorikeet")
            }
            guard let (blockElements, blockBytes) = type.blockGeometry else {
                throw .malformed(path: path, reason: "tensor '\(name)' uses \(type.name), which Lorikeet cannot read. \(GGMLType.decodableAdvice)")
            }
            guard dims[0] % blockElements == 0 else {
                throw .malformed(path: path, reason: "tensor '\(name)': rows of \(dims[0]) elements are not whole \(type.name) blocks of \(blockElements)")
            }
            let (bytes, overflow) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
            let offset = try reader.u64("the offset of '\(name)'")
            guard !overflow, offset < UInt64(Int.max) else { throw .malformed(path: path, reason: "tensor '\(name)': size or offset overflows") }
            guard Int(offset) % alignment == 0 else {
                throw .malformed(path: path, reason: "tensor '\(name)': offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            index[name] = pending.count
            pending.append(Pending(name: name, dims: dims, type: type, offset: Int(offset), bytes: bytes))
        }
        let dataStart = (reader.position + alignment - 1) / alignment * alignment
        var infos: [TensorInfo] = []
        for p in pending {
            let (start, overflow) = dataStart.addingReportingOverflow(p.offset)
            guard !overflow, start <= file.count, p.bytes <= file.count - start else {
                throw .malformed(path: path, reason: "tensor '\(p.name)': its data [\(p.offset), \(p.offset &+ p.bytes)) lies outside the file (truncated download?)")
            }
            infos.append(TensorInfo(name: p.name, dimensions: p.dims, type: p.type, range: start..<(start + p.bytes)))
        }
        tensors = infos
        tensorIndex = index
    }

    public func tensor(_ name: String) -> TensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The raw bytes of a tensor (validated at open).
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        guard let slice = file.slice(offset: tensor.range.lowerBound, length: tensor.range.count) else {
            preconditionFailure("GGUFFile: a range validated at open is no longer inside the file")
        }
        return slice
    }

    /// Size of the file in bytes.
    public var fileSize: Int { file.count }
}

/// A bounds-checked little-endian cursor over the header.
struct GGUFReader {
    let file: MappedFileRegion
    let path: String
    var position = 0

    mutating func take(_ n: Int, _ what: String) throws(FormatError) -> UnsafeRawBufferPointer {
        guard let slice = file.slice(offset: position, length: n) else {
            throw .malformed(path: path, reason: "the file ends inside \(what) (truncated?)")
        }
        position += n
        return slice
    }

    mutating func u8(_ what: String) throws(FormatError) -> UInt8 { try take(1, what)[0] }
    mutating func u16(_ what: String) throws(FormatError) -> UInt16 { UInt16(littleEndian: try take(2, what).loadUnaligned(as: UInt16.self)) }
    mutating func u32(_ what: String) throws(FormatError) -> UInt32 { UInt32(littleEndian: try take(4, what).loadUnaligned(as: UInt32.self)) }
    mutating func u64(_ what: String) throws(FormatError) -> UInt64 { UInt64(littleEndian: try take(8, what).loadUnaligned(as: UInt64.self)) }

    /// A count of items that each take at least `minimumBytesEach` bytes: larger than the rest
    /// of the file could hold means the header is damaged (and must not size an allocation).
    mutating func count(_ what: String, minimumBytesEach: Int) throws(FormatError) -> Int {
        let raw = try u64(what)
        let remaining = UInt64(file.count - position)
        guard raw <= remaining / UInt64(max(minimumBytesEach, 1)) else {
            throw .malformed(path: path, reason: "\(what) \(raw) is more than the file could hold")
        }
        return Int(raw)
    }

    mutating func string(_ what: String) throws(FormatError) -> String {
        let length = try count("the length of \(what)", minimumBytesEach: 1)
        return String(decoding: try take(length, what), as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws(FormatError) -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case 0: return .uint8(try u8(what))
        case 1: return .int8(Int8(bitPattern: try u8(what)))
        case 2: return .uint16(try u16(what))
        case 3: return .int16(Int16(bitPattern: try u16(what)))
        case 4: return .uint32(try u32(what))
        case 5: return .int32(Int32(bitPattern: try u32(what)))
        case 6: return .float32(Float(bitPattern: try u32(what)))
        case 7:
            let b = try u8(what)
            guard b <= 1 else { throw .malformed(path: path, reason: "'\(key)': boolean byte \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case 8: return .string(try string(what))
        case 9:
            guard depth < GGUFFile.maxArrayDepth else { throw .malformed(path: path, reason: "'\(key)': arrays nested too deeply") }
            let elementType = try u32("the element type of '\(key)'")
            let n = try count("the length of '\(key)'", minimumBytesEach: 1)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint64(try u64(what))
        case 11: return .int64(Int64(bitPattern: try u64(what)))
        case 12: return .float64(Double(bitPattern: try u64(what)))
        default: throw .malformed(path: path, reason: "'\(key)' has unknown value type \(type)")
        }
    }
}
