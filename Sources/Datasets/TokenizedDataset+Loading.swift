import Foundation
import TensorCore

extension TokenizedDataset {
    /// Reads, encodes and fits the JSONL file at `path` a chunk at a time, through `cache` when
    /// given: a hit skips parsing and tokenization, a miss or a damaged entry tokenizes and
    /// stores the result. Either way the examples are written to a `TokenizedFile` as they are
    /// encoded and read back through a mapping, so a file larger than memory loads.
    ///
    /// Without a cache (or when its folder cannot be written) the file is a temporary one,
    /// unlinked as soon as it is mapped; only when no temporary file can be written either are
    /// the examples kept in memory.
    public static func load(path: String, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), encoder: ExampleEncoder,
                            batching: BatchingOptions, skipInvalid: Bool = false, cache: TokenizationCache?,
                            chunkBytes: Int = 8 << 20, threads: Int = Parallel.threadCount) throws(DataError) -> TokenizedDataset {
        let vocabularySize = encoder.tokenizer.vocabularySize
        /// Encodes into a file in `directory` (the cache's, or the temporary folder).
        func encode(into writer: TokenizedFileWriter, hashing: Bool) throws(DataError) -> EncodedFile.Summary {
            let summary = try EncodedFile.stream(path: path, format: format, fields: fields, encoder: encoder, skipInvalid: skipInvalid, threads: threads,
                                                 chunkBytes: chunkBytes, hashing: hashing) { (line, example) throws(DataError) in
                try writer.append(line: line, example: example)
            }
            try writer.finish(format: summary.format, records: summary.records, skipped: summary.skipped)
            return summary
        }
        /// Maps a written file; the writer unlinks it when dropped unless it was committed.
        func open(_ file: String, key: [UInt8], source: TokenizationSource) throws(DataError) -> TokenizedDataset {
            let mapped: TokenizedFile
            do { mapped = try TokenizedFile(file: file, key: key, path: path, vocabularySize: vocabularySize) } catch {
                throw .io(path: file, reason: "the tokenized file just written cannot be read back (\(error.reason))")
            }
            return try TokenizedDataset(path: path, file: mapped, batching: batching, source: source)
        }
        /// No cache entry: a temporary file, or memory when none can be made.
        func uncached(note: String?) throws(DataError) -> TokenizedDataset {
            let key = [UInt8](repeating: 0, count: TokenizedFile.keyBytes)
            let writer: TokenizedFileWriter
            do { writer = try TokenizedFileWriter(directory: NSTemporaryDirectory(), key: key) } catch {
                let encoded = try EncodedFile.streaming(path: path, format: format, fields: fields, encoder: encoder, skipInvalid: skipInvalid,
                                                        threads: threads, chunkBytes: chunkBytes).encoded
                return try TokenizedDataset(encoded: encoded, batching: batching, source: .tokenized(note: note))
            }
            _ = try encode(into: writer, hashing: false)
            return try withExtendedLifetime(writer) { () throws(DataError) in
                try open(writer.temporaryPath, key: key, source: .tokenized(note: note))
            }
        }
        guard let cache else { return try uncached(note: nil) }

        let key = TokenizationCache.key(fileDigest: try TokenizationCache.digest(ofFile: path), encoder: encoder, format: format,
                                        fields: fields, skipInvalid: skipInvalid)
        var note: String
        switch cache.lookup(key, path: path, vocabularySize: vocabularySize) {
        case .hit(let file): return try TokenizedDataset(path: path, file: file, batching: batching, source: .cached)
        case .miss: note = "saved to the cache"
        case .damaged(let why): note = "cache entry unusable (\(why)), rebuilt"
        }
        let writer: TokenizedFileWriter
        do { writer = try cache.writer(for: key) } catch { return try uncached(note: "not cached: \(error.description)") }
        let summary = try encode(into: writer, hashing: true)
        // The key must describe the bytes encoded: a file rewritten between hashing and reading
        // is not cached under the old contents' key.
        if TokenizationCache.key(fileDigest: summary.fileDigest ?? [], encoder: encoder, format: format, fields: fields, skipInvalid: skipInvalid) != key {
            note = "not cached: the file changed while it was read"
        } else {
            do throws(DataError) {
                try writer.commit(to: cache.file(for: key))
                return try open(cache.file(for: key), key: key, source: .tokenized(note: note))
            } catch where !writer.committed { note = "not cached: \(error.description)" }
        }
        return try withExtendedLifetime(writer) { () throws(DataError) in
            try open(writer.temporaryPath, key: key, source: .tokenized(note: note))
        }
    }
}
