import Foundation
import TensorCore
import Tokenization

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

    /// Reads records from `bytes`, the contents of `path`, parsing on `threads` threads.
    public init(path: String, bytes: Data, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), skipInvalid: Bool = false,
                threads: Int = Parallel.threadCount) throws(DataError) {
        var reader = JSONLReader(path: path, format: format, fields: fields, skipInvalid: skipInvalid, threads: threads)
        let records = try bytes.withUnsafeBytes { raw in
            Result { () throws(DataError) -> [(line: Int, conversation: Conversation)] in try reader.read(raw) }
        }.get()
        self.path = path
        self.format = try reader.finish()
        self.records = records
        self.skipped = reader.skipped
    }
}
