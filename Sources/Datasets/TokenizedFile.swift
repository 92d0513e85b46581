import CZlib
import Formats
import Foundation

/// A file of encoded examples read in place through a read-only mapping: what a tokenization
/// cache entry is, and what a dataset larger than memory is trained from. Only the pages an
/// access touches are resident, and the kernel can drop them again.
///
/// Layout (little-endian), written front to back by `TokenizedFileWriter` so nothing needs the
/// whole dataset in memory:
///
///     magic "LKTOK002" [8], key [32]
///     tokens   u32 ×N   bits 0–30: token id, bit 31: trained (ids are < 2³¹)
///     lines    u32 ×n   1-based JSONL line of each example
///     starts   u64 ×(n+1)   example i is tokens[starts[i]..<starts[i+1]]; starts[n] = N
///     skipped  kinds u8, then per kind: kind u8, count u64, samples u8, per sample: line u32,
///              column u32 (0: none), reason length u32 + UTF-8
///     footer   format u8, records u64, n u64, N u64
///     CRC-32 u32 of everything before it
///
/// Opening checks every size and offset, the CRC, that `starts` rises from 0 to N and that
/// every id is inside the vocabulary, so accesses afterwards need no checks. The file must not
/// be truncated while mapped (that faults); writers only ever rename a new file into place.
public struct TokenizedFile: Sendable {
    let region: MappedFileRegion
    public let format: DatasetFormat
    /// Records read (non-blank lines), valid or not.
    public let records: Int
    /// Examples stored (n) and their tokens (N).
    public let count: Int
    public let tokens: Int
    /// Records left out under `skipInvalid`, their samples naming the dataset's path.
    public let skipped: SkippedRecords
    let linesOffset: Int, startsOffset: Int

    static let magic = Array("LKTOK002".utf8)
    static let keyBytes = 32
    static let tokensOffset = 40
    static let footerBytes = 1 + 3 * 8
    static let trainedBit: UInt32 = 1 << 31

    struct Damaged: Error { let reason: String }

    /// Maps and checks the file at `file`, written for `key`; `path` is the dataset file that
    /// skipped-record samples name (the same bytes may sit under another name).
    init(file: String, key: [UInt8], path: String, vocabularySize: Int) throws(Damaged) {
        do { region = try MappedFileRegion(path: file) } catch { throw Damaged(reason: error.description) }
        let size = region.count
        guard size >= Self.tokensOffset + Self.footerBytes + 4 else { throw Damaged(reason: "truncated (\(size) bytes)") }
        let body = size - 4
        guard Self.bytes(region, 0..<8) == Self.magic else { throw Damaged(reason: "not a tokenization cache file") }
        guard Self.bytes(region, 8..<Self.tokensOffset) == key else { throw Damaged(reason: "written for another key") }
        guard Self.crc(region, upTo: body) == Self.u32(region, body) else { throw Damaged(reason: "checksum mismatch") }

        let footer = body - Self.footerBytes
        let formatIndex = Int(region.bytes[footer])
        guard formatIndex < DatasetFormat.allCases.count else { throw Damaged(reason: "unknown format \(formatIndex)") }
        let records = try Self.int(region, footer + 1), n = try Self.int(region, footer + 9), tokens = try Self.int(region, footer + 17)
        // Each count is bounded by the bytes it needs before any offset is computed from it.
        guard n <= records, tokens <= footer / 4, n <= footer / 12 else { throw Damaged(reason: "counts exceed the file") }
        linesOffset = Self.tokensOffset + 4 * tokens
        startsOffset = linesOffset + 4 * n
        let skippedOffset = startsOffset + 8 * (n + 1)
        guard skippedOffset <= footer else { throw Damaged(reason: "counts exceed the file") }
        format = DatasetFormat.allCases[formatIndex]
        self.records = records
        count = n
        self.tokens = tokens

        var previous = 0
        for i in 0...n {
            let start = Int(UInt64(littleEndian: region.bytes.loadUnaligned(fromByteOffset: startsOffset + 8 * i, as: UInt64.self)))
            guard start >= previous, start <= tokens, i > 0 || start == 0 else { throw Damaged(reason: "example offsets out of order") }
            previous = start
            if i % (Self.passBytes / 8) == 0 { region.releasePages(behind: startsOffset + 8 * i) }
        }
        guard previous == tokens else { throw Damaged(reason: "example offsets do not end at the token count") }
        guard Self.idsWithin(region, tokens: tokens, vocabularySize: vocabularySize) else { throw Damaged(reason: "token ids outside the vocabulary") }
        skipped = try Self.skipped(Array(region.bytes[skippedOffset..<footer]), path: path)
    }

    /// 1-based JSONL line of example `i`.
    public func line(_ i: Int) -> Int { Int(Self.u32(region, linesOffset + 4 * i)) }

    /// Index of example `i`'s first token.
    func start(_ i: Int) -> Int {
        Int(UInt64(littleEndian: region.bytes.loadUnaligned(fromByteOffset: startsOffset + 8 * i, as: UInt64.self)))
    }

    public func length(_ i: Int) -> Int { start(i + 1) - start(i) }

    /// The first `prefix` tokens of example `i` (its whole length at most).
    public func example(_ i: Int, prefix: Int = .max) -> TokenizedExample {
        let first = start(i), n = min(prefix, start(i + 1) - first)
        var ids = [Int32](repeating: 0, count: n), trained = [Bool](repeating: false, count: n)
        for j in 0..<n {
            let word = token(first + j)
            ids[j] = Int32(bitPattern: word & ~Self.trainedBit)
            trained[j] = word & Self.trainedBit != 0
        }
        return TokenizedExample(ids: ids, trained: trained)
    }

    /// Trained targets among the first `prefix` tokens of example `i` (as `TokenizedExample.trainedTargets`).
    func trainedTargets(_ i: Int, prefix: Int) -> Int {
        let first = start(i), n = min(prefix, start(i + 1) - first)
        var count = 0
        for j in stride(from: 1, to: n, by: 1) where token(first + j) & Self.trainedBit != 0 { count += 1 }
        return count
    }

    /// Lets the kernel drop the resident pages of examples `range`'s tokens and offsets (a
    /// sequential pass calls this behind itself, so passing over a file larger than memory
    /// keeps none of it).
    func releasePages(ofExamples range: Range<Int>) {
        guard !range.isEmpty else { return }
        // Releases must overlap: the fault after one maps back the pages of its 64 KiB
        // neighbourhood ("fault-around"), which the next release then drops.
        let from = Self.tokensOffset + 4 * start(range.lowerBound), to = Self.tokensOffset + 4 * start(range.upperBound)
        region.releasePages(offset: from, length: to - from)
        region.releasePages(offset: startsOffset + 8 * range.lowerBound, length: 8 * range.count)
    }

    func token(_ t: Int) -> UInt32 { Self.u32(region, Self.tokensOffset + 4 * t) }

    // MARK: reading and checking

    static func u32(_ region: MappedFileRegion, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: region.bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    static func int(_ region: MappedFileRegion, _ offset: Int) throws(Damaged) -> Int {
        let v = UInt64(littleEndian: region.bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        guard v <= UInt64(Int.max) else { throw Damaged(reason: "count out of range") }
        return Int(v)
    }

    static func bytes(_ region: MappedFileRegion, _ range: Range<Int>) -> [UInt8] { Array(region.bytes[range]) }

    /// Bytes per step of a pass over the whole mapping; each step's pages are released after it.
    static let passBytes = 1 << 20

    static func crc(_ region: MappedFileRegion, upTo end: Int) -> UInt32 {
        var crc: uLong = 0
        var offset = 0
        while offset < end {
            let n = min(passBytes, end - offset)
            crc = crc32(crc, region.bytes.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) + offset }, uInt(n))
            offset += n
            region.releasePages(behind: offset)
        }
        return UInt32(crc)
    }

    static func idsWithin(_ region: MappedFileRegion, tokens: Int, vocabularySize: Int) -> Bool {
        let limit = UInt32(clamping: vocabularySize)
        var t = 0
        while t < tokens {
            let n = min(passBytes / 4, tokens - t)
            for j in t..<(t + n) where u32(region, tokensOffset + 4 * j) & ~trainedBit >= limit { return false }
            t += n
            region.releasePages(behind: tokensOffset + 4 * t)
        }
        return true
    }

    static func skipped(_ bytes: [UInt8], path: String) throws(Damaged) -> SkippedRecords {
        var r = Reader(bytes: bytes, end: bytes.count)
        var skipped = SkippedRecords()
        let kinds = try r.u8()
        for _ in 0..<kinds {
            let k = Int(try r.u8())
            guard k < InvalidRecord.allCases.count else { throw Damaged(reason: "unknown record fault \(k)") }
            let count = try r.u64(), sampleCount = Int(try r.u8())
            guard sampleCount <= count else { throw Damaged(reason: "more samples than records") }
            var samples: [SkippedRecords.Sample] = []
            for _ in 0..<sampleCount {
                let line = try r.u32(), column = try r.u32()
                let reason = try r.take(try r.u32())
                samples.append(SkippedRecords.Sample(path: path, line: line, column: column == 0 ? nil : column, reason: String(decoding: reason, as: UTF8.self)))
            }
            skipped.restore(InvalidRecord.allCases[k], count: count, samples: samples)
        }
        guard r.offset == bytes.count else { throw Damaged(reason: "\(bytes.count - r.offset) unexpected bytes after the skipped records") }
        return skipped
    }
}

extension TokenizedFile {
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
