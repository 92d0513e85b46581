import Foundation
import Tokenizers

/// A JSONL dataset file read into conversations, with every record's line number kept for
/// error messages. Blank lines are skipped; any other unparsable line is an error, never a
/// silently dropped example.
public struct JSONLFile: Sendable {
    public let path: String
    public let format: DatasetFormat
    /// The conversations with their 1-based line numbers.
    public let records: [(line: Int, conversation: Conversation)]

    /// Reads `path`; the format is `format` if given, else detected from the first record.
    public init(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames()) throws(DataError) {
        self.path = path
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        var chosen = format
        var records: [(Int, Conversation)] = []
        var lineNumber = 0
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard let line = String(validating: rawLine, as: UTF8.self) else {
                throw .record(path: path, line: lineNumber, reason: "not valid UTF-8")
            }
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            let value: JinjaValue
            do { value = try JSONReader.parse(line) } catch {
                throw .record(path: path, line: lineNumber, reason: "malformed JSON: \(error.message) (column \(error.column))")
            }
            if chosen == nil {
                guard case .object(let keys, _) = value else {
                    throw .record(path: path, line: lineNumber, reason: "expected a JSON object per line")
                }
                guard let detected = DatasetFormat.detect(keys: Set(keys), fields: fields) else {
                    throw .record(path: path, line: lineNumber, reason: "cannot tell the format from keys \(keys.sorted()); expected 'messages', 'prompt'+'completion', 'instruction'+'output' or 'text' (or set data.format and data.fields)")
                }
                chosen = detected
            }
            guard let format = chosen else { continue }
            do { records.append((lineNumber, try Conversation.from(value, format: format, fields: fields))) } catch {
                throw .record(path: path, line: lineNumber, reason: error.reason)
            }
        }
        guard let format = chosen, !records.isEmpty else { throw .io(path: path, reason: "no records (the file is empty)") }
        self.format = format
        self.records = records
    }
}
