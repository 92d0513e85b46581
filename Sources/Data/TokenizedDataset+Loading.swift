import Foundation

extension TokenizedDataset {
    /// Reads, encodes and fits the JSONL file at `path`, through `cache` when given: a hit
    /// skips parsing and tokenization, a miss or a damaged entry tokenizes and stores the result.
    public static func load(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), encoder: ExampleEncoder,
                            batching: BatchingOptions, skipInvalid: Bool = false, cache: TokenizationCache?) throws(DataError) -> TokenizedDataset {
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: "cannot read (\(error.localizedDescription))")
        }
        func encode() throws(DataError) -> EncodedFile {
            try EncodedFile(file: try JSONLFile(path: path, bytes: bytes, format: format, fields: fields, skipInvalid: skipInvalid),
                            encoder: encoder, skipInvalid: skipInvalid)
        }
        guard let cache else { return try TokenizedDataset(encoded: try encode(), batching: batching) }

        let key = TokenizationCache.key(fileBytes: bytes, encoder: encoder, format: format, fields: fields, skipInvalid: skipInvalid)
        var note: String
        switch cache.lookup(key, path: path, vocabularySize: encoder.tokenizer.vocabularySize) {
        case .hit(let encoded): return try TokenizedDataset(encoded: encoded, batching: batching, source: .cached)
        case .miss: note = "saved to the cache"
        case .damaged(let why): note = "cache entry unusable (\(why)), rebuilt"
        }
        let encoded = try encode()
        do { try cache.store(encoded, key: key) } catch { note = "not cached: \(error.description)" }
        return try TokenizedDataset(encoded: encoded, batching: batching, source: .tokenized(note: note))
    }
}
