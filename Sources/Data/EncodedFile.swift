import TensorCore

/// A dataset file's records as token ids and loss masks, before they are fitted to rows: the
/// expensive part of data preparation, and what `TokenizationCache` stores.
public struct EncodedFile: Sendable, Equatable {
    public var path: String
    public var format: DatasetFormat
    /// Records read (non-blank lines), valid or not.
    public var records: Int
    /// The valid records' 1-based lines, and their encodings, in file order.
    public var lines: [Int]
    public var examples: [TokenizedExample]
    /// Records left out under `skipInvalid`, from reading and from encoding.
    public var skipped: SkippedRecords

    public init(path: String, format: DatasetFormat, records: Int, lines: [Int], examples: [TokenizedExample], skipped: SkippedRecords) {
        precondition(lines.count == examples.count, "EncodedFile: \(lines.count) lines for \(examples.count) examples")
        self.path = path
        self.format = format
        self.records = records
        self.lines = lines
        self.examples = examples
        self.skipped = skipped
    }

    /// Records per work item: small enough to balance uneven records across threads.
    static let block = 32

    /// Encodes every record of `file` on `threads` threads;
    /// the first bad record (by line) is the error, or with `skipInvalid` each is counted.
    public init(file: JSONLFile, encoder: ExampleEncoder, skipInvalid: Bool = false, threads: Int = Parallel.threadCount) throws(DataError) {
        let records = file.records
        var results = [Result<TokenizedExample, RecordError>?](repeating: nil, count: records.count)
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forBlocks(records.count, block: Self.block, threads: threads) { range in
                for i in range {
                    out[i] = Result { () throws(RecordError) -> TokenizedExample in try encoder.encode(records[i].conversation) }
                }
            }
        }
        var lines: [Int] = [], examples: [TokenizedExample] = []
        lines.reserveCapacity(records.count)
        examples.reserveCapacity(records.count)
        var skipped = file.skipped
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let e)?:
                lines.append(records[i].line)
                examples.append(e)
            case .failure(let error)?:
                guard skipInvalid else { throw .record(path: file.path, line: records[i].line, reason: error.reason) }
                skipped.add(error.kind, path: file.path, line: records[i].line, reason: error.reason)
            case nil: throw .record(path: file.path, line: records[i].line, reason: "not tokenized")
            }
        }
        self.init(path: file.path, format: file.format, records: records.count + file.skipped.total, lines: lines, examples: examples, skipped: skipped)
    }
}
