import Foundation
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

    /// Reads records from `bytes`, the contents of `path`.
    public init(path: String, bytes: Data, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), skipInvalid: Bool = false) throws(DataError) {
        self.path = path
        var chosen = format
        var records: [(Int, Conversation)] = []
        var skipped = SkippedRecords()
        var nonBlank = 0
        func reject(_ kind: InvalidRecord, _ line: Int, column: Int? = nil, _ reason: String) throws(DataError) {
            guard skipInvalid else { throw .record(path: path, line: line, column: column, reason: reason) }
            skipped.add(kind, path: path, line: line, column: column, reason: reason)
        }
        var lineNumber = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard let line = String(validating: rawLine, as: UTF8.self) else {
                nonBlank += 1
                try reject(.invalidUTF8, lineNumber, "not valid UTF-8")
                continue
            }
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            nonBlank += 1
            let value: JinjaValue
            do { value = try JSONReader.parse(line) } catch {
                let message = error.message.hasPrefix("JSON: ") ? String(error.message.dropFirst(6)) : error.message
                try reject(.malformedJSON, lineNumber, column: error.column, "malformed JSON: \(message)")
                continue
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
