import Foundation
import TensorCore
import Tokenizers

/// A JSONL dataset file read into conversations, with every record's line number kept for
/// error messages. Blank lines are skipped; any other unusable line is an error, or, with
/// `skipInvalid`, a counted entry in `skipped` — never a silently dropped example.
public struct JSONLFile: Sendable {
    public let path: String
    public let format: DatasetFormat
    /// The conversations with their 1-based line numbers.
    public let records: [(line: Int, conversation: Conversation)]
    /// Records left out (only with `skipInvalid`).
    public let skipped: SkippedRecords

    /// Reads `path`; the format is `format` if given, else detected from the first usable record.
    public init(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), skipInvalid: Bool = false) throws(DataError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        try self.init(path: path, bytes: data, format: format, fields: fields, skipInvalid: skipInvalid)
    }

    /// One line after the parallel stage: UTF-8 checked and JSON parsed.
    enum ParsedLine {
        case blank, invalidUTF8
        case malformed(message: String, column: Int)
        case value(JinjaValue)
    }

    /// Lines per work item of the parallel parse.
    static let block = 256

    /// Reads records from `bytes`, the contents of `path`: lines are checked and parsed on
    /// `threads` threads, then read in order (format detection, fields, errors by line).
    public init(path: String, bytes: Data, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), skipInvalid: Bool = false,
                threads: Int = Parallel.threadCount) throws(DataError) {
        self.path = path
        var chosen = format
        var records: [(Int, Conversation)] = []
        var skipped = SkippedRecords()
        var nonBlank = 0
        func reject(_ kind: InvalidRecord, _ line: Int, column: Int? = nil, _ reason: String) throws(DataError) {
            guard skipInvalid else { throw .record(path: path, line: line, column: column, reason: reason) }
            skipped.add(kind, path: path, line: line, column: column, reason: reason)
        }
        let parsed = bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [ParsedLine] in
            var lineRanges: [Range<Int>] = []
            var start = 0
            for i in 0..<raw.count where raw[i] == 0x0A {
                lineRanges.append(start..<i)
                start = i + 1
            }
            lineRanges.append(start..<raw.count)
            var parsed = [ParsedLine](repeating: .blank, count: lineRanges.count)
            parsed.withUnsafeMutableBufferPointer { out in
                Parallel.forBlocks(lineRanges.count, block: Self.block, threads: threads) { range in
                    for i in range {
                        guard let line = String(validating: raw[lineRanges[i]], as: UTF8.self) else { out[i] = .invalidUTF8; continue }
                        if line.allSatisfy({ $0.isWhitespace }) { continue }
                        switch Result(catching: { () throws(TemplateError) -> JinjaValue in try JSONReader.parse(line) }) {
                        case .success(let value): out[i] = .value(value)
                        case .failure(let error):
                            out[i] = .malformed(message: error.message.hasPrefix("JSON: ") ? String(error.message.dropFirst(6)) : error.message, column: error.column)
                        }
                    }
                }
            }
            return parsed
        }
        for (index, line) in parsed.enumerated() {
            let lineNumber = index + 1
            let value: JinjaValue
            switch line {
            case .blank: continue
            case .invalidUTF8:
                nonBlank += 1
                try reject(.invalidUTF8, lineNumber, "not valid UTF-8")
                continue
            case .malformed(let message, let column):
                nonBlank += 1
                try reject(.malformedJSON, lineNumber, column: column, "malformed JSON: \(message)")
                continue
            case .value(let v):
                nonBlank += 1
                value = v
            }
            if chosen == nil {
                guard case .object(let keys, _) = value else {
                    try reject(.unknownLayout, lineNumber, "expected a JSON object per line")
                    continue
                }
                guard let detected = DatasetFormat.detect(keys: Set(keys), fields: fields) else {
                    try reject(.unknownLayout, lineNumber, "cannot tell the format from keys \(keys.sorted()); expected 'messages', 'prompt'+'completion', 'instruction'+'output' or 'text' (or set data.format and data.fields)")
                    continue
                }
                chosen = detected
            }
            guard let format = chosen else { continue }
            do { records.append((lineNumber, try Conversation.from(value, format: format, fields: fields))) } catch {
                try reject(error.kind, lineNumber, error.reason)
            }
        }
        guard nonBlank > 0 else { throw .io(path: path, reason: "no records (the file is empty)") }
        guard let format = chosen, !records.isEmpty else {
            throw .io(path: path, reason: "no valid records: " + skipped.report.joined(separator: "\n"))
        }
        self.format = format
        self.records = records
        self.skipped = skipped
    }
}
