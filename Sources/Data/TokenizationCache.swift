import CZlib
import Formats
import Foundation

/// Encoded dataset files on disk, so a second run over the same data skips tokenization.
///
/// The key is SHA-256 of everything that decides the encoding: the file's bytes, the
/// tokenizer's fingerprint, the chat template's text, train_on, the format and field names and
/// skip_invalid. Row settings (max_seq_len, over_long, packing) are not in it: entries hold
/// examples before they are fitted to rows, and fitting is cheap, so changing them still hits.
/// A file that fails any check (magic, key, sizes, ids within the vocabulary, CRC-32) is
/// treated as absent and rewritten.
public struct TokenizationCache: Sendable {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    /// Bumped whenever encoding or this layout changes, so old entries stop matching.
    static let version = "lorikeet-tokenized-v1"
    static let magic = Array("LKTOK001".utf8)

    public enum Lookup: Sendable, Equatable {
        case hit(EncodedFile)
        case miss
        /// An entry exists but cannot be used (why).
        case damaged(String)
    }

    public static func key(fileBytes: Data, encoder: ExampleEncoder, format: DatasetFormat?, fields: FieldNames, skipInvalid: Bool) -> [UInt8] {
        var file = SHA256()
        file.update(fileBytes)
        return key(fileDigest: file.finalize(), encoder: encoder, format: format, fields: fields, skipInvalid: skipInvalid)
    }

    /// SHA-256 of a file's bytes, read in chunks.
    public static func digest(ofFile path: String) throws(DataError) -> [UInt8] {
        do { return try SHA256.digest(ofFile: path) } catch { throw .io(path: path, reason: error.description) }
    }

    public static func key(fileDigest: [UInt8], encoder: ExampleEncoder, format: DatasetFormat?, fields: FieldNames, skipInvalid: Bool) -> [UInt8] {
        let settings = [version, encoder.template?.source ?? "<no template>", encoder.trainOn.rawValue, format?.rawValue ?? "auto",
                        fields.text, fields.prompt, fields.completion, fields.messages, fields.tools, fields.instruction, fields.input, fields.output,
                        skipInvalid ? "skip-invalid" : "strict"]
        var key = SHA256()
        key.update(fileDigest)
        key.update(encoder.tokenizer.fingerprint)
        for s in settings { key.update(Array(s.utf8)); key.update([0]) }
        return key.finalize()
    }

    public func file(for key: [UInt8]) -> String { directory + "/" + SHA256.hex(key) + ".lktok" }

    /// The entry for `key`, its paths and samples renamed to `path` (the same bytes may sit
    /// under another name).
    public func lookup(_ key: [UInt8], path: String, vocabularySize: Int) -> Lookup {
        guard let data = FileManager.default.contents(atPath: file(for: key)) else { return .miss }
        do { return .hit(try Self.decode([UInt8](data), key: key, path: path, vocabularySize: vocabularySize)) } catch {
            return .damaged(error.reason)
        }
    }

    /// Writes the entry to a temporary name and renames it, so a reader never sees half of one.
    public func store(_ encoded: EncodedFile, key: [UInt8]) throws(DataError) {
        let target = file(for: key)
        // Line numbers and lengths are stored as u32 (they increase, so the last line is the largest).
        guard (encoded.lines.last ?? 0) <= Int(UInt32.max), encoded.examples.allSatisfy({ $0.ids.count <= Int(UInt32.max) }) else {
            throw .io(path: target, reason: "too many lines or tokens for the cache format")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(Self.encode(encoded, key: key)).write(to: URL(fileURLWithPath: target), options: .atomic)
        } catch { throw .io(path: target, reason: "cannot write the tokenization cache (\(error.localizedDescription))") }
    }
}

// MARK: layout

/// Layout (little-endian): magic "LKTOK001", key [32], format u8, records u64, examples n u64,
/// tokens N u64, lines u32 ×n, lengths u32 ×n, ids u32 ×N, trained bits ⌈N/8⌉ (LSB first),
/// skipped (kinds u8, then per kind: kind u8, count u64, samples u8, per sample: line u32,
/// column u32 (0: none), reason length u32 + UTF-8), CRC-32 u32 of all that precedes.
extension TokenizationCache {
    struct Damaged: Error { let reason: String }

    static func encode(_ e: EncodedFile, key: [UInt8]) -> [UInt8] {
        var out = magic + key
        // Callers keep values in range (`store` checks lines and lengths; sample lines are lines).
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(clamping: v).littleEndian) { out += $0 } }
        func u64(_ v: Int) { withUnsafeBytes(of: UInt64(v).littleEndian) { out += $0 } }
        let tokens = e.examples.reduce(0) { $0 + $1.ids.count }
        out.append(UInt8(DatasetFormat.allCases.firstIndex(of: e.format) ?? 0))
        u64(e.records); u64(e.examples.count); u64(tokens)
        out.reserveCapacity(out.count + 8 * e.examples.count + tokens * 4 + tokens / 8 + 4096)
        for line in e.lines { u32(line) }
        for example in e.examples { u32(example.ids.count) }
        for example in e.examples {
            for id in example.ids { withUnsafeBytes(of: UInt32(bitPattern: id).littleEndian) { out += $0 } }
        }
        var byte: UInt8 = 0, bit = 0
        for example in e.examples {
            for t in example.trained {
                if t { byte |= 1 << bit }
                bit += 1
                if bit == 8 { out.append(byte); byte = 0; bit = 0 }
            }
        }
        if bit > 0 { out.append(byte) }
        let kinds = InvalidRecord.allCases.filter { e.skipped.counts[$0] != nil }
        out.append(UInt8(kinds.count))
        for kind in kinds {
            out.append(UInt8(InvalidRecord.allCases.firstIndex(of: kind) ?? 0))
            u64(e.skipped.counts[kind] ?? 0)
            let samples = e.skipped.samples[kind] ?? []
            out.append(UInt8(samples.count))
            for s in samples {
                u32(s.line); u32(min(s.column ?? 0, Int(UInt32.max)))
                let reason = Array(s.reason.utf8)
                u32(reason.count)
                out += reason
            }
        }
        let crc = out.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        withUnsafeBytes(of: crc.littleEndian) { out += $0 }
        return out
    }

    static func decode(_ bytes: [UInt8], key: [UInt8], path: String, vocabularySize: Int) throws(Damaged) -> EncodedFile {
        guard bytes.count >= magic.count + key.count + 4 else { throw Damaged(reason: "truncated (\(bytes.count) bytes)") }
        let body = bytes.count - 4
        let crc = bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt(body))) }
        var r = Reader(bytes: bytes, end: body)
        guard try r.take(magic.count) == magic[...] else { throw Damaged(reason: "not a tokenization cache file") }
        guard try r.take(key.count) == key[...] else { throw Damaged(reason: "written for another key") }
        var trailer = Reader(bytes: bytes, offset: body, end: bytes.count)
        guard try trailer.u32() == Int(crc) else { throw Damaged(reason: "checksum mismatch") }
        let formatIndex = Int(try r.u8())
        guard formatIndex < DatasetFormat.allCases.count else { throw Damaged(reason: "unknown format \(formatIndex)") }
        let records = try r.u64(), n = try r.u64(), tokens = try r.u64()
        // Every count is checked against the bytes left before anything is allocated for it.
        guard n <= records, n <= (body - r.offset) / 8, tokens <= (body - r.offset) / 4 else { throw Damaged(reason: "counts exceed the file") }
        var lines: [Int] = [], lengths: [Int] = []
        for _ in 0..<n { lines.append(try r.u32()) }
        for _ in 0..<n { lengths.append(try r.u32()) }
        guard lengths.reduce(0, +) == tokens else { throw Damaged(reason: "lengths do not add up to the token count") }
        let idBytes = try r.range(tokens * 4), maskBytes = try r.range((tokens + 7) / 8)
        var examples: [TokenizedExample] = []
        examples.reserveCapacity(n)
        var t = 0
        var vocabularyOK = true
        bytes.withUnsafeBytes { raw in
            for length in lengths {
                let ids = [Int32](unsafeUninitializedCapacity: length) { buffer, count in
                    for j in 0..<length {
                        let id = Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: idBytes.lowerBound + 4 * (t + j), as: UInt32.self)))
                        if id < 0 || Int(id) >= vocabularySize { vocabularyOK = false }
                        buffer[j] = id
                    }
                    count = length
                }
                let trained = (t..<(t + length)).map { raw[maskBytes.lowerBound + $0 / 8] & (1 << ($0 % 8)) != 0 }
                examples.append(TokenizedExample(ids: ids, trained: trained))
                t += length
            }
        }
        guard vocabularyOK else { throw Damaged(reason: "token ids outside the vocabulary") }
        var skipped = SkippedRecords()
        let kinds = try r.u8()
        for _ in 0..<kinds {
            let k = Int(try r.u8())
            guard k < InvalidRecord.allCases.count else { throw Damaged(reason: "unknown record fault \(k)") }
            let kind = InvalidRecord.allCases[k]
            let count = try r.u64(), sampleCount = Int(try r.u8())
            guard sampleCount <= count else { throw Damaged(reason: "more samples than records") }
            var samples: [SkippedRecords.Sample] = []
            for _ in 0..<sampleCount {
                let line = try r.u32(), column = try r.u32()
                let reason = try r.take(try r.u32())
                samples.append(SkippedRecords.Sample(path: path, line: line, column: column == 0 ? nil : column, reason: String(decoding: reason, as: UTF8.self)))
            }
            skipped.restore(kind, count: count, samples: samples)
        }
        guard r.offset == body else { throw Damaged(reason: "\(body - r.offset) unexpected trailing bytes") }
        return EncodedFile(path: path, format: DatasetFormat.allCases[formatIndex], records: records, lines: lines, examples: examples, skipped: skipped)
    }

    /// Bounds-checked little-endian reads.
    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        let end: Int
        init(bytes: [UInt8], offset: Int = 0, end: Int) {
            self.bytes = bytes
            self.offset = offset
            self.end = end
        }
        mutating func range(_ count: Int) throws(Damaged) -> Range<Int> {
            guard count >= 0, count <= end - offset else { throw Damaged(reason: "truncated") }
            defer { offset += count }
            return offset..<(offset + count)
        }
        mutating func take(_ count: Int) throws(Damaged) -> ArraySlice<UInt8> { bytes[try range(count)] }
        mutating func u8() throws(Damaged) -> UInt8 { bytes[try range(1).lowerBound] }
        mutating func u32() throws(Damaged) -> Int {
            let r = try range(4)
            return (0..<4).reduce(0) { $0 | Int(bytes[r.lowerBound + $1]) << (8 * $1) }
        }
        mutating func u64() throws(Damaged) -> Int {
            let r = try range(8)
            let v = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[r.lowerBound + $1]) << (8 * UInt64($1)) }
            guard v <= UInt64(Int.max) else { throw Damaged(reason: "count out of range") }
            return Int(v)
        }
    }
}
