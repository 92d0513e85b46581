import Foundation

extension TokenizedDataset {
    /// Reads, encodes and fits the JSONL file at `path` a chunk at a time, through `cache` when
    /// given: a hit skips parsing and tokenization, a miss or a damaged entry tokenizes and
    /// stores the result.
    public static func load(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), encoder: ExampleEncoder,
                            batching: BatchingOptions, skipInvalid: Bool = false, cache: TokenizationCache?) throws(DataError) -> TokenizedDataset {
        func encode() throws(DataError) -> (encoded: EncodedFile, fileDigest: [UInt8]?) {
            try EncodedFile.streaming(path: path, format: format, fields: fields, encoder: encoder, skipInvalid: skipInvalid, hashing: cache != nil)
        }
        guard let cache else { return try TokenizedDataset(encoded: try encode().encoded, batching: batching) }

        let key = TokenizationCache.key(fileDigest: try TokenizationCache.digest(ofFile: path), encoder: encoder, format: format,
                                        fields: fields, skipInvalid: skipInvalid)
        var note: String
        switch cache.lookup(key, path: path, vocabularySize: encoder.tokenizer.vocabularySize) {
        case .hit(let encoded): return try TokenizedDataset(encoded: encoded, batching: batching, source: .cached)
        case .miss: note = "saved to the cache"
        case .damaged(let why): note = "cache entry unusable (\(why)), rebuilt"
        }
        let (encoded, digest) = try encode()
        // The key must describe the bytes encoded: a file rewritten between hashing and reading
        // is not cached under the old contents' key.
        if TokenizationCache.key(fileDigest: digest ?? [], encoder: encoder, format: format, fields: fields, skipInvalid: skipInvalid) != key {
            note = "not cached: the file changed while it was read"
        } else {
            do { try cache.store(encoded, key: key) } catch { note = "not cached: \(error.description)" }
        }
        return try TokenizedDataset(encoded: encoded, batching: batching, source: .tokenized(note: note))
    }
}
