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
                        skipped: &skipped) { (line, example) throws(DataError) in
            lines.append(line)
            examples.append(example)
        }
        self.init(path: file.path, format: file.format, records: file.records.count + file.skipped.total, lines: lines, examples: examples, skipped: skipped)
    }

    /// Reads and encodes the file at `path` a chunk of lines at a time, keeping the encoded
    /// examples in memory (the in-memory twin of `TokenizedDataset.load`, which writes them to
    /// a file instead). With `hashing`, returns the SHA-256 of the bytes read too.
    public static func streaming(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), encoder: ExampleEncoder,
                                 skipInvalid: Bool = false, threads: Int = Parallel.threadCount, chunkBytes: Int = 8 << 20,
                                 hashing: Bool = false) throws(DataError) -> (encoded: EncodedFile, fileDigest: [UInt8]?) {
        var lines: [Int] = [], examples: [TokenizedExample] = []
        let summary = try stream(path: path, format: format, fields: fields, encoder: encoder, skipInvalid: skipInvalid, threads: threads,
                                 chunkBytes: chunkBytes, hashing: hashing) { (line, example) throws(DataError) in
            lines.append(line)
            examples.append(example)
        }
        return (EncodedFile(path: path, format: summary.format, records: summary.records, lines: lines, examples: examples, skipped: summary.skipped),
                summary.fileDigest)
    }

    /// What a pass over a file found besides its examples.
    struct Summary {
        var format: DatasetFormat
        var records: Int
        var skipped: SkippedRecords
        var fileDigest: [UInt8]?
    }

    /// Reads the file at `path` `chunkBytes` at a time, encodes each chunk's records on
    /// `threads` threads and hands the valid ones to `emit` in file order, so only one chunk's
    /// text and encodings are alive at a time.
    static func stream(path: String, format: DatasetFormat?, fields: FieldNames, encoder: ExampleEncoder, skipInvalid: Bool, threads: Int,
                       chunkBytes: Int, hashing: Bool, emit: (Int, TokenizedExample) throws(DataError) -> Void) throws(DataError) -> Summary {
        var chunks = try LineChunks(path: path, chunkBytes: chunkBytes, hashing: hashing)
        var reader = JSONLReader(path: path, format: format, fields: fields, skipInvalid: skipInvalid, threads: threads)
        var encodingSkipped = SkippedRecords()
        while let chunk = try chunks.next() {
            let records = try chunk.withUnsafeBytes { raw in
                Result { () throws(DataError) -> [(line: Int, conversation: Conversation)] in try reader.read(raw) }
            }.get()
            try encode(records, path: path, encoder: encoder, skipInvalid: skipInvalid, threads: threads, skipped: &encodingSkipped, emit: emit)
        }
        let detected = try reader.finish()
        var skipped = reader.skipped
        skipped.merge(encodingSkipped)
        var hasher = chunks.hasher
        return Summary(format: detected, records: reader.records, skipped: skipped, fileDigest: hasher?.finalize())
    }

    /// Encodes `records` on `threads` threads and hands the results to `emit` in order.
    static func encode(_ records: [(line: Int, conversation: Conversation)], path: String, encoder: ExampleEncoder, skipInvalid: Bool, threads: Int,
                       skipped: inout SkippedRecords, emit: (Int, TokenizedExample) throws(DataError) -> Void) throws(DataError) {
        var results = [Result<TokenizedExample, RecordError>?](repeating: nil, count: records.count)
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forBlocks(records.count, block: Self.block, threads: threads) { range in
                for i in range {
                    out[i] = Result { () throws(RecordError) -> TokenizedExample in try encoder.encode(records[i].conversation) }
                }
            }
        }
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let e)?:
                try emit(records[i].line, e)
            case .failure(let error)?:
                guard skipInvalid else { throw .record(path: path, line: records[i].line, reason: error.reason) }
                skipped.add(error.kind, path: path, line: records[i].line, reason: error.reason)
            case nil: throw .record(path: path, line: records[i].line, reason: "not tokenized")
            }
        }
    }
}
