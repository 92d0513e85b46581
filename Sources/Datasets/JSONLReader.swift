import Formats
import Foundation
import TensorCore
import Tokenization

/// Turns JSONL lines into conversations a chunk of lines at a time, carrying what spans chunks
/// (the detected format, line numbers, skipped records), so a file is never held whole.
struct JSONLReader {
    let path: String
    let fields: FieldNames
    let skipInvalid: Bool
    let threads: Int
    /// Given, or detected from the first usable record.
    private(set) var format: DatasetFormat?
    private(set) var skipped = SkippedRecords()
    /// Non-blank lines seen, valid or not.
    private(set) var records = 0
    private(set) var valid = 0
    /// Lines read so far.
    private var lines = 0

    init(path: String, format: DatasetFormat?, fields: FieldNames, skipInvalid: Bool, threads: Int) {
        self.path = path
        self.format = format
        self.fields = fields
        self.skipInvalid = skipInvalid
        self.threads = threads
    }

    /// One line after the parallel stage: UTF-8 checked and JSON parsed.
    enum ParsedLine {
        case blank, invalidUTF8
        case malformed(message: String, column: Int)
        case value(JinjaValue)
    }

    /// Lines per work item of the parallel parse.
    static let block = 256

    /// The records of `bytes`: whole lines following those already read, separated by "\n"
    /// (no trailing one). Lines are checked and parsed on `threads` threads, then read in order
    /// (format detection, fields, errors by line).
    mutating func read(_ bytes: UnsafeRawBufferPointer) throws(DataError) -> [(line: Int, conversation: Conversation)] {
        var lineRanges: [Range<Int>] = []
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            lineRanges.append(start..<i)
            start = i + 1
        }
        lineRanges.append(start..<bytes.count)
        var parsed = [ParsedLine](repeating: .blank, count: lineRanges.count)
        parsed.withUnsafeMutableBufferPointer { out in
            Parallel.forBlocks(lineRanges.count, block: Self.block, threads: threads) { range in
                for i in range {
                    guard let line = String(validating: bytes[lineRanges[i]], as: UTF8.self) else { out[i] = .invalidUTF8; continue }
                    if line.allSatisfy({ $0.isWhitespace }) { continue }
                    switch Result(catching: { () throws(TemplateError) -> JinjaValue in try JSONReader.parse(line) }) {
                    case .success(let value): out[i] = .value(value)
                    case .failure(let error):
                        out[i] = .malformed(message: error.message.hasPrefix("JSON: ") ? String(error.message.dropFirst(6)) : error.message, column: error.column)
                    }
                }
            }
        }
        let first = lines + 1
        lines += lineRanges.count
        var result: [(line: Int, conversation: Conversation)] = []
        result.reserveCapacity(parsed.count)
        for (index, line) in parsed.enumerated() {
            let lineNumber = first + index
            let value: JinjaValue
            switch line {
            case .blank: continue
            case .invalidUTF8:
                records += 1
                try reject(.invalidUTF8, lineNumber, "not valid UTF-8")
                continue
            case .malformed(let message, let column):
                records += 1
                try reject(.malformedJSON, lineNumber, column: column, "malformed JSON: \(message)")
                continue
            case .value(let v):
                records += 1
                value = v
            }
            if format == nil {
                guard case .object(let keys, _) = value else {
                    try reject(.unknownLayout, lineNumber, "expected a JSON object per line")
                    continue
                }
                guard let detected = DatasetFormat.detect(keys: Set(keys), fields: fields) else {
                    try reject(.unknownLayout, lineNumber, "cannot tell the format from keys \(keys.sorted()); expected 'messages', 'prompt'+'completion', 'instruction'+'output' or 'text' (or set data.format and data.fields)")
                    continue
                }
                format = detected
            }
            guard let format else { continue }
            do {
                result.append((lineNumber, try Conversation.from(value, format: format, fields: fields)))
                valid += 1
            } catch {
                try reject(error.kind, lineNumber, error.reason)
            }
        }
        return result
    }

    /// The file's format once every line is read; an empty file, or one without a single
    /// valid record, is an error.
    func finish() throws(DataError) -> DatasetFormat {
        guard records > 0 else { throw .io(path: path, reason: "no records (the file is empty)") }
        guard let format, valid > 0 else { throw .io(path: path, reason: "no valid records: " + skipped.report.joined(separator: "\n")) }
        return format
    }

    private mutating func reject(_ kind: InvalidRecord, _ line: Int, column: Int? = nil, _ reason: String) throws(DataError) {
        guard skipInvalid else { throw .record(path: path, line: line, column: column, reason: reason) }
        skipped.add(kind, path: path, line: line, column: column, reason: reason)
    }
}

/// A file's bytes as chunks of whole lines, read `chunkBytes` at a time, hashed on the way
/// when asked (the tokenization cache's key must describe the bytes actually read).
struct LineChunks {
    let path: String
    let handle: FileHandle
    let chunkBytes: Int
    private var carry: [UInt8] = []
    private var finished = false
    private(set) var hasher: SHA256?

    init(path: String, chunkBytes: Int = 8 << 20, hashing: Bool) throws(DataError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .io(path: path, reason: "cannot open for reading") }
        self.path = path
        self.handle = handle
        self.chunkBytes = max(1, chunkBytes)
        hasher = hashing ? SHA256() : nil
    }

    /// The next run of whole lines (without the "\n" after the last), or nil at the end. The
    /// final chunk is what follows the file's last "\n" (empty when the file ends with one).
    mutating func next() throws(DataError) -> [UInt8]? {
        guard !finished else { return nil }
        while true {
            let data: Data
            do { data = try handle.read(upToCount: chunkBytes) ?? Data() } catch {
                throw .io(path: path, reason: "read failed (\(error.localizedDescription))")
            }
            if data.isEmpty {
                finished = true
                try? handle.close()
                defer { carry = [] }
                return carry
            }
            hasher?.update(data)
            let searchFrom = carry.count
            carry += data
            if let last = carry[searchFrom...].lastIndex(of: 0x0A) {
                let chunk = Array(carry[..<last])
                carry = Array(carry[(last + 1)...])
                return chunk
            }
        }
    }
}
