import Foundation

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header mapping
/// tensor names to dtype, shape and byte range, then the raw little-endian data.
///
/// Every size in the header is checked before use: the header length against the file, each
/// byte range against the data section, and each range's length against its dtype × shape
/// (overflow-checked), so a damaged or hostile file is an error, never a wild read.
public final class SafetensorsFile: @unchecked Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        var size: Int { self == .f32 ? 4 : 2 }
    }

    public struct Entry: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        /// Absolute byte range in the file.
        public let range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let entries: [String: Entry]
    /// The free-form `__metadata__` strings.
    public let metadata: [String: String]
    let file: MappedFileRegion

    /// Headers above this are refused: real ones are kilobytes to a few megabytes.
    static let maxHeaderBytes = 100 << 20

    public init(path: String) throws(FormatError) {
        self.path = path
        file = try MappedFileRegion(path: path)
        func malformed(_ why: String) -> FormatError { .malformed(path: path, reason: why) }

        guard let lengthBytes = file.slice(offset: 0, length: 8) else {
            throw malformed("too short for a safetensors file (\(file.count) bytes; the header length alone takes 8)")
        }
        let headerLength = lengthBytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= UInt64(Self.maxHeaderBytes), let header = file.slice(offset: 8, length: Int(headerLength)) else {
            throw malformed("header length \(headerLength) exceeds the file size \(file.count) (truncated or not safetensors)")
        }
        let dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(header))
        } catch {
            throw malformed("the header is not valid JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else { throw malformed("the header is not a JSON object") }

        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                for (k, v) in value as? [String: Any] ?? [:] { if let s = v as? String { metadata[k] = s } }
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any], let offsets = info["data_offsets"] as? [Any], offsets.count == 2 else {
                throw malformed("tensor '\(name)': header entry lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw .unsupportedDType(path: path, tensor: name, dtype: dtypeName)
            }
            let shape = shapeValues.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeValues.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw malformed("tensor '\(name)': shape \(shapeValues) is not a list of non-negative integers")
            }
            guard let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue,
                  begin >= 0, end >= begin else {
                throw malformed("tensor '\(name)': data_offsets \(offsets) are not an increasing pair of integers")
            }
            var bytes = dtype.size
            for d in shape {
                let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else { throw malformed("tensor '\(name)': shape \(shape) overflows") }
                bytes = p
            }
            guard end - begin == bytes else {
                throw malformed("tensor '\(name)': \(end - begin) bytes of data for \(dtypeName) \(shape), which needs \(bytes)")
            }
            guard end <= file.count - dataStart else {
                throw malformed("tensor '\(name)': data [\(begin), \(end)) runs past the end of the file (truncated?)")
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end))
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Decodes a tensor to Float32 into `destination` (elementCount floats).
    public func decode(_ name: String, into destination: UnsafeMutablePointer<Float>) throws(FormatError) {
        guard let entry = entries[name] else { throw .missingTensor(path: path, tensor: name) }
        decode(entry, elements: 0..<entry.elementCount, into: destination)
    }

    /// Decodes elements `elements` (row-major) of `entry` into `destination`.
    public func decode(_ entry: Entry, elements: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        precondition(elements.lowerBound >= 0 && elements.upperBound <= entry.elementCount, "decode: \(elements) outside '\(entry.name)'")
        guard let raw = file.slice(offset: entry.range.lowerBound + elements.lowerBound * entry.dtype.size,
                                   length: elements.count * entry.dtype.size) else {
            preconditionFailure("decode: range validated at open is no longer inside the file")
        }
        HalfPrecision.decode(raw, dtype: entry.dtype, count: elements.count, into: destination)
    }
}

/// IEEE half and bfloat16 to Float32 (exact: every half and bfloat16 value is a Float32).
public enum HalfPrecision {
    static func decode(_ raw: UnsafeRawBufferPointer, dtype: SafetensorsFile.DType, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .bf16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                out[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .f16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                out[i] = Float(Float16(bitPattern: bits))
            }
        }
    }
}
