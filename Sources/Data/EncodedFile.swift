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

    /// Encodes every record of `file` on `threads` threads; the first bad record (by line) is
    /// the error, or with `skipInvalid` each is counted.
    public init(file: JSONLFile, encoder: ExampleEncoder, skipInvalid: Bool = false, threads: Int = Parallel.threadCount) throws(DataError) {
        var lines: [Int] = [], examples: [TokenizedExample] = [], skipped = file.skipped
        try Self.encode(file.records, path: file.path, encoder: encoder, skipInvalid: skipInvalid, threads: threads,
                        lines: &lines, examples: &examples, skipped: &skipped)
        self.init(path: file.path, format: file.format, records: file.records.count + file.skipped.total, lines: lines, examples: examples, skipped: skipped)
    }

    /// Reads and encodes the file at `path` a chunk of lines at a time, so only the encoded
    /// examples are kept, never the whole text or its parsed records. With `hashing`, returns
    /// the SHA-256 of the bytes read too (what a cache entry for this result must be keyed by).
    public static func streaming(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), encoder: ExampleEncoder,
                                 skipInvalid: Bool = false, threads: Int = Parallel.threadCount, chunkBytes: Int = 8 << 20,
                                 hashing: Bool = false) throws(DataError) -> (encoded: EncodedFile, fileDigest: [UInt8]?) {
        var chunks = try LineChunks(path: path, chunkBytes: chunkBytes, hashing: hashing)
        var reader = JSONLReader(path: path, format: format, fields: fields, skipInvalid: skipInvalid, threads: threads)
        var lines: [Int] = [], examples: [TokenizedExample] = [], encodingSkipped = SkippedRecords()
        while let chunk = try chunks.next() {
            let records = try chunk.withUnsafeBytes { raw in
                Result { () throws(DataError) -> [(line: Int, conversation: Conversation)] in try reader.read(raw) }
            }.get()
            try encode(records, path: path, encoder: encoder, skipInvalid: skipInvalid, threads: threads,
                       lines: &lines, examples: &examples, skipped: &encodingSkipped)
        }
        let detected = try reader.finish()
        var skipped = reader.skipped
        skipped.merge(encodingSkipped)
        var hasher = chunks.hasher
        return (EncodedFile(path: path, format: detected, records: reader.records, lines: lines, examples: examples, skipped: skipped), hasher?.finalize())
    }

    /// Encodes `records` on `threads` threads and appends the results in order.
    static func encode(_ records: [(line: Int, conversation: Conversation)], path: String, encoder: ExampleEncoder, skipInvalid: Bool, threads: Int,
                       lines: inout [Int], examples: inout [TokenizedExample], skipped: inout SkippedRecords) throws(DataError) {
        var results = [Result<TokenizedExample, RecordError>?](repeating: nil, count: records.count)
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forBlocks(records.count, block: Self.block, threads: threads) { range in
                for i in range {
                    out[i] = Result { () throws(RecordError) -> TokenizedExample in try encoder.encode(records[i].conversation) }
                }
            }
        }
        lines.reserveCapacity(lines.count + records.count)
        examples.reserveCapacity(examples.count + records.count)
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let e)?:
                lines.append(records[i].line)
                examples.append(e)
            case .failure(let error)?:
                guard skipInvalid else { throw .record(path: path, line: records[i].line, reason: error.reason) }
                skipped.add(error.kind, path: path, line: records[i].line, reason: error.reason)
            case nil: throw .record(path: path, line: records[i].line, reason: "not tokenized")
            }
        }
    }
}
