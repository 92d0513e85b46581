import Datasets
import Formats
import Foundation
import TensorCore
import Tokenization
import XCTest

/// Datasets read from a mapped tokenized file give the batches the in-memory pipeline gives,
/// and loading a file keeps memory bounded by the chunk size, not by the file.
final class MappedDatasetTests: XCTestCase {
    /// The expectation built the old way, independently of the mapped path: every record encoded
    /// into memory, each example fitted with `BatchingOptions.fit`, the kept ones in an array.
    static func inMemoryTwin(path: String, encoder: ExampleEncoder, batching: BatchingOptions) throws -> TokenizedDataset {
        let encoded = try EncodedFile(file: try JSONLFile(path: path, skipInvalid: true), encoder: encoder, skipInvalid: true)
        return TokenizedDataset(path: path, examples: encoded.examples.compactMap { batching.fit($0) }, statistics: DataStatistics())
    }

    /// Every tensor of `count` batches of `stream`, concatenated.
    static func bytes(of stream: inout BatchStream, count: Int) -> [[Int32]] {
        (0..<count).map { _ in
            let b = stream.next()
            return b.ids.scalars + b.positions.scalars + b.segments.scalars + b.targets.scalars + [Int32(b.examples), Int32(b.realTokens), Int32(b.trainedTokens)]
        }
    }

    func testMappedDatasetGivesTheInMemoryBatches() throws {
        let (tokenizer, gguf) = try DatasetsTests.smollm2()
        let template = try ChatTemplate(source: try XCTUnwrap(gguf.metadata["tokenizer.chat_template"]?.string))
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        var rng = RandomGenerator(seed: 7)
        var lines = (0..<300).map { i -> String in
            let words = Int(rng.next() % 60)
            return #"{"prompt": "What is term \#(i)?", "completion": "Term \#(i) is \#(String(repeating: "a thing ", count: words))."}"#
        }
        lines[17] = #"{"prompt": "no completion"}"#
        lines[140] = "{broken"
        let path = try DatasetsTests.temporaryFile(lines.joined(separator: "\n"))
        let cache = TokenizationCache(directory: (path as NSString).deletingLastPathComponent + "/cache")
        // A cache folder that cannot be created (its parent is a file): loading still works.
        let unusable = TokenizationCache(directory: path + "/cache")

        let settings = [BatchingOptions(batchSize: 3, maxSeqLen: 128, mode: .packed, overLong: .truncate),
                        BatchingOptions(batchSize: 2, maxSeqLen: 112, mode: .padded, overLong: .drop),
                        BatchingOptions(batchSize: 4, maxSeqLen: 96, mode: .packed, overLong: .drop)]
        for (n, batching) in settings.enumerated() {
            let expected = try Self.inMemoryTwin(path: path, encoder: encoder, batching: batching)
            let old = try TokenizedDataset(encoded: try EncodedFile.streaming(path: path, encoder: encoder, skipInvalid: true).encoded, batching: batching)
            func load(_ cache: TokenizationCache?) throws -> TokenizedDataset {
                try TokenizedDataset.load(path: path, encoder: encoder, batching: batching, skipInvalid: true, cache: cache, chunkBytes: 4096, threads: 2)
            }
            let datasets = [try load(nil), try load(cache), try load(cache), try load(unusable)]
            // Row settings are not in the key: only the very first load tokenizes into the cache.
            XCTAssertEqual(datasets[..<3].map(\.source), [.tokenized(note: nil), n == 0 ? .tokenized(note: "saved to the cache") : .cached, .cached])
            guard case .tokenized(let note?) = datasets[3].source else { return XCTFail("\(datasets[3].source)") }
            XCTAssertTrue(note.hasPrefix("not cached:"), note)
            XCTAssertGreaterThan(old.statistics.truncated + old.statistics.droppedTooLong, 10, "the test must exercise fitting")
            XCTAssertGreaterThan(expected.count, 100)
            for dataset in datasets {
                XCTAssertEqual(dataset.statistics, old.statistics, "\(dataset.source)")
                XCTAssertEqual(dataset.statistics.skipped.total, 2)
                XCTAssertEqual(dataset.lengths, expected.lengths)
                XCTAssertEqual(dataset.examples, expected.examples)
                // Three epochs from two seeds, then resuming mid-epoch from a cursor.
                for seed: UInt64 in [1, 2] {
                    var a = BatchStream(dataset: dataset, options: batching, seed: seed), b = BatchStream(dataset: expected, options: batching, seed: seed)
                    let n = 3 * a.plan.batchCount
                    XCTAssertEqual(Self.bytes(of: &a, count: n), Self.bytes(of: &b, count: n), "seed \(seed), \(dataset.source)")
                    var resumed = BatchStream(dataset: dataset, options: batching, seed: seed, cursor: DataCursor(epoch: 1, index: 5))
                    var fresh = BatchStream(dataset: expected, options: batching, seed: seed, cursor: DataCursor(epoch: 1, index: 5))
                    XCTAssertEqual(Self.bytes(of: &resumed, count: 7), Self.bytes(of: &fresh, count: 7))
                }
                XCTAssertEqual(BatchStream(dataset: dataset, options: batching, seed: 0, shuffle: false).allBatches().map(\.targets.scalars),
                               BatchStream(dataset: expected, options: batching, seed: 0, shuffle: false).allBatches().map(\.targets.scalars))
            }
        }

        // The entry holds every valid record's line and whole (unfitted) encoding.
        let key = TokenizationCache.key(fileBytes: try Data(contentsOf: URL(fileURLWithPath: path)), encoder: encoder, format: nil,
                                        fields: FieldNames(), skipInvalid: true)
        let encoded = try EncodedFile.streaming(path: path, encoder: encoder, skipInvalid: true).encoded
        guard case .hit(let file) = cache.lookup(key, path: path, vocabularySize: tokenizer.vocabularySize) else { return XCTFail("no cache entry") }
        XCTAssertEqual(file.count, encoded.examples.count)
        XCTAssertEqual((0..<file.count).map { file.line($0) }, encoded.lines)
        XCTAssertEqual((0..<file.count).map { file.example($0) }, encoded.examples)
        XCTAssertEqual(file.records, 300)
        // An entry is checked against the vocabulary it is opened for, and against its key.
        guard case .damaged(let why) = cache.lookup(key, path: path, vocabularySize: 100) else { return XCTFail("ids beyond a vocabulary of 100 accepted") }
        XCTAssertTrue(why.contains("vocabulary"), why)
        try FileManager.default.copyItem(atPath: cache.file(for: key), toPath: cache.file(for: [UInt8](repeating: 1, count: 32)))
        guard case .damaged(let other) = cache.lookup([UInt8](repeating: 1, count: 32), path: path, vocabularySize: tokenizer.vocabularySize) else {
            return XCTFail("an entry under another key's name accepted")
        }
        XCTAssertTrue(other.contains("another key"), other)
        // No temporary files are left behind, in the cache or the temporary folder.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.directory).filter { $0.hasSuffix(".tmp") }, [])
    }

    // MARK: bounded memory

    /// One token per UTF-8 byte, EOS 256: fast enough to tokenize tens of MB in a debug build.
    struct ByteTokenizer: Tokenizer {
        let tokens = (0..<256).map { String(UnicodeScalar(UInt8($0))) } + ["</s>"]
        let bos: Int32? = nil
        let eos: Int32? = 256
        let addBOS = false
        let specialTokens = ["</s>": Int32(256)]
        func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) throws(TokenizerError) -> [Int32] { text.utf8.map { Int32($0) } }
        func decodeBytes(_ ids: [Int32]) -> [UInt8] { ids.flatMap(tokenBytes) }
        func tokenBytes(_ id: Int32) -> [UInt8] { id < 256 ? [UInt8(id)] : Array("</s>".utf8) }
        func decodedLengths(_ ids: [Int32]) -> [Int] { ids.map { tokenBytes($0).count } }
        let fingerprint = [UInt8](repeating: 0xB7, count: 32)
    }

    /// Resets the peak resident size (Linux 4.0+), so VmHWM − VmRSS-before is the growth of
    /// what runs next.
    static func resetPeak() -> Bool {
        guard let f = fopen("/proc/self/clear_refs", "w") else { return false }
        defer { fclose(f) }
        return fputs("5", f) >= 0
    }

    static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }

    /// Peak resident growth while `body` runs.
    static func peakGrowth(_ body: () throws -> Void) throws -> Int {
        // Freed heap pages still count in VmRSS until returned; a later allocation reuses them
        // without growing the peak, which would hide what `body` keeps. Return them first.
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {  // glibc; RTLD_DEFAULT
            _ = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)(0)
        }
        guard resetPeak(), let before = status("VmRSS") else { throw XCTSkip("needs /proc/self/clear_refs and VmHWM (Linux)") }
        try body()
        return try XCTUnwrap(status("VmHWM")) - before
    }

    func testLoadingKeepsMemoryBoundedByTheChunkNotTheFile() throws {
        // ~24 MB of text records: kept in memory (4-byte id + 1-byte mask per token, one token
        // per byte) they would take ~120 MB; 256 KiB at a time must stay far below the file's size.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-mmap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/big.jsonl"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var rng = RandomGenerator(seed: 3)
        let words = ["packet", "kernel", "compiler", "lambda", "register", "cache", "thread", "socket", "parser", "monad"]
        for _ in 0..<80 {
            var block = ""
            for _ in 0..<1000 {
                let text = (0..<(20 + Int(rng.next() % 40))).map { _ in words[Int(rng.next() % 10)] }.joined(separator: " ")
                block += #"{"text": "\#(text)"}"# + "\n"
            }
            out.write(Data(block.utf8))
        }
        try out.close()
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertGreaterThan(size, 20 << 20)
        print("[memory] file \(size) bytes")

        let encoder = ExampleEncoder(tokenizer: ByteTokenizer(), template: nil, trainOn: .all)
        let batching = BatchingOptions(batchSize: 4, maxSeqLen: 1024)
        let cache = TokenizationCache(directory: dir + "/cache")
        // Warm-up on a small file, unmeasured: the allocator's per-thread arenas and first-touched
        // code are a one-time cost of any load, not memory that grows with the file.
        let small = dir + "/small.jsonl"
        let head = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(1 << 20)
        try Data(head.prefix(through: try XCTUnwrap(head.lastIndex(of: 0x0A)))).write(to: URL(fileURLWithPath: small))
        _ = try TokenizedDataset.load(path: small, encoder: encoder, batching: batching, cache: nil, chunkBytes: 256 << 10, threads: 2)
        var tokens = 0
        let mapped = try Self.peakGrowth {
            let dataset = try TokenizedDataset.load(path: path, encoder: encoder, batching: batching, cache: cache, chunkBytes: 256 << 10, threads: 2)
            tokens = dataset.statistics.tokens
            XCTAssertEqual(dataset.count, 80_000)
        }
        let hit = try Self.peakGrowth {
            let dataset = try TokenizedDataset.load(path: path, encoder: encoder, batching: batching, cache: cache, chunkBytes: 256 << 10, threads: 2)
            XCTAssertEqual(dataset.source, .cached)
            XCTAssertEqual(dataset.statistics.tokens, tokens)
        }
        // The same measurement sees the in-memory twin's growth: it can tell the two apart.
        let inMemory = try Self.peakGrowth {
            let encoded = try EncodedFile.streaming(path: path, encoder: encoder, chunkBytes: 256 << 10).encoded
            XCTAssertEqual(encoded.examples.reduce(0) { $0 + $1.ids.count }, tokens)
        }
        print("[memory] peak growth: tokenize \(mapped), cache hit \(hit), in-memory twin \(inMemory) bytes")
        XCTAssertGreaterThan(tokens, size * 9 / 10)
        // The heap's own growth (thread arenas, the tokenizer's caches) is a few MB whatever the
        // file's size and varies with what ran before; bounded means well under the file and a
        // small fraction of what keeping the examples costs, measured the same way.
        XCTAssertGreaterThan(inMemory, 2 * size, "the measurement must see examples kept in memory")
        XCTAssertLessThan(mapped, size, "tokenizing \(size) bytes grew the peak by \(mapped) bytes")
        XCTAssertLessThan(hit, size, "opening the cached entry of \(size) bytes grew the peak by \(hit) bytes")
        XCTAssertLessThan(mapped, inMemory / 4, "tokenizing grew the peak by \(mapped) bytes, keeping the examples by \(inMemory)")
        XCTAssertLessThan(hit, inMemory / 4, "opening the cache grew the peak by \(hit) bytes, keeping the examples by \(inMemory)")
    }
}
