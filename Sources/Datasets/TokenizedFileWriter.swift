import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `TokenizedFile` front to back as examples arrive, so encoding a dataset keeps only
/// the current chunk in memory (plus 12 bytes per example for the line and offset index, which
/// follows the tokens). The file is written under a temporary name in the target's folder and
/// renamed into place when complete, so a reader never sees half of one; a writer dropped
/// without `commit` deletes its file.
final class TokenizedFileWriter {
    /// Where the bytes are going (a hidden temporary name until `commit`).
    let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var crc: uLong = 0
    private var lines: [UInt32] = []
    private var starts: [UInt64] = [0]
    /// Renamed into place (then the file is no longer the writer's to delete).
    private(set) var committed = false

    /// Bytes gathered before each write(2).
    static let bufferBytes = 1 << 20

    /// Starts a file for `key` in `directory` (created if missing).
    init(directory: String, key: [UInt8]) throws(DataError) {
        precondition(key.count == TokenizedFile.keyBytes, "TokenizedFileWriter: a key is \(TokenizedFile.keyBytes) bytes")
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .io(path: directory, reason: "cannot create the folder (\(error.localizedDescription))")
        }
        temporaryPath = directory + "/.lktok-\(UUID().uuidString).tmp"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .io(path: temporaryPath, reason: "cannot create (\(String(cString: strerror(errno))))") }
        buffer.reserveCapacity(Self.bufferBytes + 4096)
        buffer += TokenizedFile.magic + key
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }

    /// Appends one example, read from JSONL line `line`.
    func append(line: Int, example: TokenizedExample) throws(DataError) {
        guard line <= Int(UInt32.max), lines.count < Int(UInt32.max) else { throw .io(path: temporaryPath, reason: "too many lines for the cache format") }
        for (id, trained) in zip(example.ids, example.trained) {
            guard id >= 0 else { throw .io(path: temporaryPath, reason: "negative token id \(id)") }
            u32(UInt32(id) | (trained ? TokenizedFile.trainedBit : 0))
        }
        lines.append(UInt32(line))
        starts.append((starts.last ?? 0) + UInt64(example.ids.count))
        if buffer.count >= Self.bufferBytes { try flush() }
    }

    /// Writes the index, the skipped records, the footer and the CRC, and syncs the file.
    func finish(format: DatasetFormat, records: Int, skipped: SkippedRecords) throws(DataError) {
        let (n, tokens) = (lines.count, starts.last ?? 0)
        for line in lines { u32(line) }
        for start in starts { u64(start) }
        lines = []
        starts = []
        let kinds = InvalidRecord.allCases.filter { skipped.counts[$0] != nil }
        buffer.append(UInt8(kinds.count))
        for kind in kinds {
            buffer.append(UInt8(InvalidRecord.allCases.firstIndex(of: kind) ?? 0))
            u64(UInt64(skipped.counts[kind] ?? 0))
            let samples = skipped.samples[kind] ?? []
            buffer.append(UInt8(clamping: samples.count))
            for s in samples.prefix(255) {
                u32(UInt32(clamping: s.line)); u32(UInt32(clamping: s.column ?? 0))
                let reason = Array(s.reason.utf8)
                u32(UInt32(reason.count))
                buffer += reason
            }
        }
        buffer.append(UInt8(DatasetFormat.allCases.firstIndex(of: format) ?? 0))
        u64(UInt64(records)); u64(UInt64(n)); u64(tokens)
        try flush()
        withUnsafeBytes(of: UInt32(crc).littleEndian) { buffer += $0 }
        try flush(checksummed: false)
        guard fsync(fd) == 0, close(fd) == 0 else { fd = -1; throw failure("cannot write") }
        fd = -1
    }

    /// Renames the finished file to `path`, replacing whatever was there.
    func commit(to path: String) throws(DataError) {
        precondition(fd < 0, "TokenizedFileWriter: commit before finish")
        guard rename(temporaryPath, path) == 0 else { throw .io(path: path, reason: "cannot rename into place (\(String(cString: strerror(errno))))") }
        committed = true
    }

    private func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { buffer += $0 } }
    private func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { buffer += $0 } }

    private func flush(checksummed: Bool = true) throws(DataError) {
        let written = buffer.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            if checksummed { crc = crc32(crc, base.assumingMemoryBound(to: UInt8.self), uInt(raw.count)) }
            var done = 0
            while done < raw.count {
                let n = write(fd, base + done, raw.count - done)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
        guard written else { throw failure("cannot write") }
        buffer.removeAll(keepingCapacity: true)
    }

    private func failure(_ what: String) -> DataError {
        .io(path: temporaryPath, reason: "\(what) (\(String(cString: strerror(errno))))")
    }
}
