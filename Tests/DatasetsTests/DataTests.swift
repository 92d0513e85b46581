import Datasets
import Formats
import Foundation
import TensorCore
import Tokenization
import XCTest

/// Loss masks equal the reference (scripts/fixtures/data/make_mask_goldens.py), records are
/// read or rejected by line, batches lay examples out as the model expects.
final class DatasetsTests: XCTestCase {
    static func smollm2() throws -> (BPETokenizer, GGUFFile) {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let file = try GGUFFile(path: path)
        return (try BPETokenizer(gguf: file), file)
    }

    static func temporaryFile(_ contents: String, name: String = "data.jsonl") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: masks

    func testMultiTurnMasksEqualTheReference() throws {
        let (tokenizer, _) = try Self.smollm2()
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/mask-goldens.json")
        let document = try JSONReader.parse(String(decoding: try Data(contentsOf: url), as: UTF8.self))
        guard case .object(_, let top) = document, case .object(_, let sources)? = top["templates"], case .array(let cases)? = top["cases"] else {
            return XCTFail("malformed goldens")
        }
        var checked = 0, trainedSeen = 0
        for (n, c) in cases.enumerated() {
            guard case .object(_, let fields) = c, case .string(let name)? = fields["template"], case .string(let source)? = sources[name],
                  case .array(let messages)? = fields["messages"] else { return XCTFail("case \(n) malformed") }
            func ints(_ key: String) -> [Int] {
                guard case .array(let values)? = fields[key] else { return [] }
                return values.compactMap { if case .int(let i) = $0 { return i }; return nil }
            }
            let template = try ChatTemplate(source: source)
            for (mode, key) in [(TrainOn.assistant, "assistant"), (.last, "last")] {
                let example = try ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: mode).encode(.chat(messages: messages, tools: nil))
                XCTAssertEqual(example.ids.map(Int.init), ints("ids"), "\(name) case \(n): ids")
                XCTAssertEqual(example.trained.map { $0 ? 1 : 0 }, ints(key), "\(name) case \(n): \(key) mask")
                trainedSeen += example.trained.filter { $0 }.count
                checked += 1
            }
        }
        XCTAssertEqual(checked, 40)
        XCTAssertGreaterThan(trainedSeen, 200)
    }

    func testMaskCoversTheAnswerAndTheEndOfTurnOnly() throws {
        let (tokenizer, file) = try Self.smollm2()
        let template = try ChatTemplate(source: try XCTUnwrap(file.metadata["tokenizer.chat_template"]?.string))
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        let example = try encoder.encode(.chat(messages: [
            .dictionary([("role", .string("user")), ("content", .string("What is RAM?"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("Memory."))]),
        ], tools: nil))
        let trainedIDs = zip(example.ids, example.trained).filter(\.1).map(\.0)
        XCTAssertEqual(tokenizer.decode(trainedIDs), "Memory.<|im_end|>")
    }

    func testTemplatesThatRewriteEarlierTurnsAreReported() throws {
        let (tokenizer, _) = try Self.smollm2()
        // Renders the last assistant turn differently from the same turn inside a prefix.
        let template = try ChatTemplate(source: "{% for m in messages %}{% if loop.last %}[{{ m.content }}]{% else %}{{ m.content }}{% endif %}{% endfor %}")
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        XCTAssertThrowsError(try encoder.encode(.chat(messages: [
            .dictionary([("role", .string("user")), ("content", .string("q"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("a"))]),
            .dictionary([("role", .string("user")), ("content", .string("q2"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("a2"))]),
        ], tools: nil))) { error in
            XCTAssertTrue("\(error)".contains("prefix"), "\(error)")
        }
    }

    // MARK: records

    func testFormatsAreDetectedAndFieldsRemapped() throws {
        let cases: [(String, DatasetFormat)] = [
            (#"{"text": "hello"}"#, .text),
            (#"{"prompt": "p", "completion": "c"}"#, .completion),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#, .messages),
            (#"{"instruction": "i", "input": "", "output": "o"}"#, .alpaca),
        ]
        for (line, format) in cases {
            XCTAssertEqual(try JSONLFile(path: try Self.temporaryFile(line + "\n\n" + line)).format, format)
        }
        let alpaca = try JSONLFile(path: try Self.temporaryFile(#"{"instruction": "Translate", "input": "chat", "output": "cat"}"#))
        XCTAssertEqual(alpaca.records[0].conversation, .chat(messages: [
            .dictionary([("role", .string("user")), ("content", .string("Translate\n\nchat"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("cat"))]),
        ], tools: nil))
        var fields = FieldNames()
        fields.prompt = "question"
        fields.completion = "answer"
        let remapped = try JSONLFile(path: try Self.temporaryFile(#"{"question": "q", "answer": "a"}"#), fields: fields)
        XCTAssertEqual(remapped.format, .completion)
        XCTAssertEqual(remapped.records.count, 1)
    }

    func testBadRecordsNameTheFileAndLine() throws {
        let bad: [(String, String)] = [
            ("{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", ":2:"),
            // The colon is missing where column 9 starts the value.
            ("{\"text\": \"ok\"}\n{\"text\" \"x\"}\n", ":2:9: malformed JSON"),
            ("{\"text\": \"ok\"}\n{\"other\": 1}\n", ":2: missing field 'text'"),
            ("{\"text\": \"ok\"}\n{\"text\": 5}\n", ":2: field 'text' must be a string"),
            ("{\"messages\": {\"role\": \"user\"}}\n", ":1: field 'messages' must be an array"),
            ("{\"prompt\": \"q\", \"completion\": \" \"}\n", ":1: field 'completion' (the assistant's reply) is empty"),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"\"}]}\n", ":1: message 1 (assistant) has empty content"),
            ("{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}\n", ":1: message 0 has role 'wizard'"),
            ("{\"messages\": [{\"role\": \"user\"}]}\n", ":1: message 0 has no 'content'"),
            ("{\"foo\": 1}\n", ":1: cannot tell the format from keys [\"foo\"]"),
            ("\n\n[1, 2]\n", ":3: expected a JSON object"),
            ("", "no records (the file is empty)"),
            ("\n  \n", "no records (the file is empty)"),
        ]
        for (contents, expected) in bad {
            let path = try Self.temporaryFile(contents)
            XCTAssertThrowsError(try JSONLFile(path: path)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix(path), message)
                XCTAssertTrue(message.contains(expected), "\(message) lacks \(expected)")
            }
        }
        let invalidUTF8 = try Self.temporaryFile("")
        try Data([0x7B, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]).write(to: URL(fileURLWithPath: invalidUTF8))
        XCTAssertThrowsError(try JSONLFile(path: invalidUTF8)) { XCTAssertTrue("\($0)".contains(":1: not valid UTF-8"), "\($0)") }
        XCTAssertThrowsError(try JSONLFile(path: "/nonexistent/train.jsonl")) { XCTAssertTrue("\($0)".hasPrefix("/nonexistent/train.jsonl")) }
    }

    /// One record of each kind of fault, among good ones.
    static let mixedRecords: [[UInt8]] = [
        #"{"messages": [{"role": "user", "content": "What is RAM?"}, {"role": "assistant", "content": "Memory."}]}"#,
        #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]"#,
        #"{"messages": 5}"#,
        #"{"other": 1}"#,
        #"{"messages": [{"role": "wizard", "content": "x"}]}"#,
        #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}"#,
        "{\"text\": \"\u{FF}\"}",
        #"{"messages": [{"role": "user", "content": "only a question"}]}"#,
        #"{"messages": [{"role": "user", "content": "What is ROM?"}, {"role": "assistant", "content": "Read-only memory."}]}"#,
    ].enumerated().map { n, line in n == 6 ? [0x7B, 0x22, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D] : Array(line.utf8) }

    func testSkipInvalidCountsEveryBadRecordByReason() throws {
        let path = try Self.temporaryFile("")
        try Data(Self.mixedRecords.joined(separator: [0x0A]) + [0x0A]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try JSONLFile(path: path)) { XCTAssertTrue("\($0)".hasPrefix(path + ":2:"), "\($0)") }

        let file = try JSONLFile(path: path, skipInvalid: true)
        XCTAssertEqual(file.records.map(\.line), [1, 8, 9])
        let expected: [InvalidRecord: Int] = [.malformedJSON: 1, .wrongType: 1, .missingField: 1, .unknownRole: 1, .emptyAssistantTurn: 1, .invalidUTF8: 1]
        XCTAssertEqual(file.skipped.counts, expected)
        XCTAssertEqual(file.skipped.samples[.unknownRole]?.map(\.description), [path + ":5: message 0 has role 'wizard' (expected system, user, assistant or tool)"])
        XCTAssertEqual(file.skipped.samples[.invalidUTF8]?.first?.line, 7)

        // The record with no assistant turn parses, and fails only when masks are made.
        let (tokenizer, gguf) = try Self.smollm2()
        let template = try ChatTemplate(source: try XCTUnwrap(gguf.metadata["tokenizer.chat_template"]?.string))
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        XCTAssertThrowsError(try TokenizedDataset(file: file, encoder: encoder, batching: BatchingOptions())) {
            XCTAssertTrue("\($0)".hasPrefix(path + ":8: no assistant turn"), "\($0)")
        }
        let dataset = try TokenizedDataset(file: file, encoder: encoder, batching: BatchingOptions(), skipInvalid: true)
        XCTAssertEqual(dataset.examples.count, 2)
        XCTAssertEqual(dataset.statistics.records, 9)
        XCTAssertEqual(dataset.statistics.skipped.total, 7)
        XCTAssertEqual(dataset.statistics.skipped.samples[.noAssistantTurn]?.map(\.line), [8])
        let report = dataset.statistics.skipped.report
        XCTAssertTrue(report[0].hasPrefix("7 invalid records skipped: 1 not valid UTF-8, 1 malformed JSON"), report[0])
        XCTAssertEqual(report.count, 8, "\(report)")

        // Nothing valid left is still an error, and it lists what was wrong.
        let allBad = try Self.temporaryFile("{\"text\": 1}\n[]\n")
        XCTAssertThrowsError(try JSONLFile(path: allBad, skipInvalid: true)) {
            XCTAssertTrue("\($0)".contains("no valid records: 2 invalid records skipped"), "\($0)")
        }
    }

    func testParallelReadingKeepsFileOrderAndTheFirstBadLine() throws {
        // Several parse blocks, so records from different threads are put back in order.
        var lines = (0..<1000).map { #"{"text": "record \#($0)"}"# }
        lines[700] = #"{"text": 7}"#
        lines[900] = "{"
        let path = try Self.temporaryFile(lines.joined(separator: "\n"))
        for threads in [1, 2, 3] {
            XCTAssertThrowsError(try JSONLFile(path: path, bytes: try Data(contentsOf: URL(fileURLWithPath: path)), threads: threads)) {
                XCTAssertEqual("\($0)", path + ":701: field 'text' must be a string")
            }
            let file = try JSONLFile(path: path, bytes: try Data(contentsOf: URL(fileURLWithPath: path)), skipInvalid: true, threads: threads)
            XCTAssertEqual(file.records.map(\.line), (1...1000).filter { $0 != 701 && $0 != 901 })
            XCTAssertEqual(file.records.last?.conversation, .text("record 999"))
            XCTAssertEqual(file.skipped.samples[.malformedJSON]?.map(\.line), [901])
        }
    }

    func testStreamingInSmallChunksEqualsReadingWhole() throws {
        let (tokenizer, gguf) = try Self.smollm2()
        let template = try ChatTemplate(source: try XCTUnwrap(gguf.metadata["tokenizer.chat_template"]?.string))
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        let path = try Self.temporaryFile("")
        // Every kind of fault, blank lines, and a last line without "\n"; chunks of 7 to 4096
        // bytes cut lines anywhere (most lines are longer than the smallest chunk).
        let bytes = Data((Self.mixedRecords + [[], Array("  ".utf8)] + Self.mixedRecords.prefix(1)).joined(separator: [0x0A]))
        try bytes.write(to: URL(fileURLWithPath: path))
        let whole = try EncodedFile(file: try JSONLFile(path: path, skipInvalid: true), encoder: encoder, skipInvalid: true)
        XCTAssertEqual(whole.lines, [1, 9, 12])  // 8 has no assistant turn
        for chunkBytes in [7, 64, 4096] {
            let (streamed, digest) = try EncodedFile.streaming(path: path, encoder: encoder, skipInvalid: true, threads: 2, chunkBytes: chunkBytes, hashing: true)
            XCTAssertEqual(streamed, whole, "chunk \(chunkBytes)")
            XCTAssertEqual(digest, try TokenizationCache.digest(ofFile: path))
            XCTAssertThrowsError(try EncodedFile.streaming(path: path, encoder: encoder, chunkBytes: chunkBytes)) {
                XCTAssertTrue("\($0)".hasPrefix(path + ":2:"), "\($0)")
            }
        }
        var hasher = SHA256()
        hasher.update(bytes)
        XCTAssertEqual(try TokenizationCache.digest(ofFile: path), hasher.finalize())
        let empty = try Self.temporaryFile("\n\n")
        XCTAssertThrowsError(try EncodedFile.streaming(path: empty, encoder: encoder, chunkBytes: 1)) {
            XCTAssertTrue("\($0)".contains("no records (the file is empty)"), "\($0)")
        }
    }

    // MARK: tokenization cache

    func testCacheHitsReturnTheSameDatasetAndDamagedEntriesAreRebuilt() throws {
        let (tokenizer, gguf) = try Self.smollm2()
        let template = try ChatTemplate(source: try XCTUnwrap(gguf.metadata["tokenizer.chat_template"]?.string))
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant)
        let lines = (0..<40).map { #"{"prompt": "What is term \#($0)?", "completion": "Term \#($0) is \#(String(repeating: "a thing ", count: $0 % 7 + 1))."}"# }
        let path = try Self.temporaryFile((lines + ["{\"prompt\": \"bad\"}"]).joined(separator: "\n"))
        let cache = TokenizationCache(directory: (path as NSString).deletingLastPathComponent + "/cache")
        let batching = BatchingOptions(batchSize: 2, maxSeqLen: 48)
        func load(_ encoder: ExampleEncoder = encoder, batching: BatchingOptions = batching, format: DatasetFormat? = nil) throws -> TokenizedDataset {
            try TokenizedDataset.load(path: path, format: format, encoder: encoder, batching: batching, skipInvalid: true, cache: cache)
        }
        let uncached = try TokenizedDataset.load(path: path, encoder: encoder, batching: batching, skipInvalid: true, cache: nil)
        let first = try load(), second = try load()
        XCTAssertEqual(first.source, .tokenized(note: "saved to the cache"))
        XCTAssertEqual(second.source, .cached)
        for dataset in [first, second] {
            XCTAssertEqual(dataset.examples, uncached.examples)
            XCTAssertEqual(dataset.statistics, uncached.statistics)
        }
        XCTAssertEqual(second.statistics.skipped.samples[.missingField]?.map(\.description), [path + ":41: missing field 'completion' (format completion)"])
        XCTAssertGreaterThan(uncached.statistics.truncated, 0, "the test must exercise truncation")
        // Row settings are applied after the cache: a new max_seq_len still hits, and fits anew.
        let longer = try load(batching: BatchingOptions(batchSize: 2, maxSeqLen: 512))
        XCTAssertEqual(longer.source, .cached)
        XCTAssertEqual(longer.statistics.truncated, 0)

        // Everything that decides the encoding is in the key.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        func key(_ bytes: Data = bytes, encoder: ExampleEncoder = encoder, format: DatasetFormat? = nil, fields: FieldNames = FieldNames(), skip: Bool = true) -> [UInt8] {
            TokenizationCache.key(fileBytes: bytes, encoder: encoder, format: format, fields: fields, skipInvalid: skip)
        }
        var renamed = FieldNames()
        renamed.completion = "answer"
        let tiny = try BPETokenizer(tokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 1], preTokenizer: .gpt2, bos: nil, eos: nil, addBOS: false, source: "tiny")
        let tinyUnmerged = try BPETokenizer(tokens: ["a", "b", "ab"], merges: [], tokenTypes: [1, 1, 1], preTokenizer: .gpt2, bos: nil, eos: nil, addBOS: false, source: "tiny")
        let keys = [
            key(), key(bytes + Data("\n".utf8)), key(format: .completion), key(fields: renamed), key(skip: false),
            key(encoder: ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .last)),
            key(encoder: ExampleEncoder(tokenizer: tokenizer, template: try ChatTemplate(source: template.source + " "), trainOn: .assistant)),
            key(encoder: ExampleEncoder(tokenizer: tiny, template: template, trainOn: .assistant)),
            key(encoder: ExampleEncoder(tokenizer: tinyUnmerged, template: template, trainOn: .assistant)),
        ]
        XCTAssertEqual(Set(keys).count, keys.count, "every key part must change the key")
        XCTAssertEqual(key(), key(), "the key is deterministic")
        XCTAssertEqual(try load(ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .last)).source, .tokenized(note: "saved to the cache"))
        XCTAssertEqual(try load(format: .completion).source, .tokenized(note: "saved to the cache"))

        // A truncated or altered entry is ignored, rebuilt, and then used again.
        let entry = cache.file(for: key())
        let good = try Data(contentsOf: URL(fileURLWithPath: entry))
        var flipped = good
        flipped[good.count / 2] ^= 0x10
        for damaged in [good.prefix(good.count - 9), flipped, good.prefix(10), Data()] {
            try damaged.write(to: URL(fileURLWithPath: entry))
            let rebuilt = try load()
            guard case .tokenized(let note?) = rebuilt.source else { return XCTFail("\(rebuilt.source)") }
            XCTAssertTrue(note.contains("rebuilt"), note)
            XCTAssertEqual(rebuilt.examples, uncached.examples)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: entry)), good)
            XCTAssertEqual(try load().source, .cached)
        }
    }

    func testTextExamplesEndWithEOSAndTrainEverything() throws {
        let (tokenizer, _) = try Self.smollm2()
        let example = try ExampleEncoder(tokenizer: tokenizer, template: nil, trainOn: .assistant).encode(.text("A compiler <|im_end|>"))
        XCTAssertEqual(example.ids.last, tokenizer.eos)
        XCTAssertTrue(example.trained.allSatisfy { $0 })
        // User text is never parsed for special tokens.
        XCTAssertEqual(example.ids.dropLast().filter { $0 == tokenizer.specialTokens["<|im_end|>"] }.count, 0)
    }

    // MARK: batches

    static func example(_ ids: [Int32], trainedFrom: Int = 1) -> TokenizedExample {
        TokenizedExample(ids: ids, trained: ids.indices.map { $0 >= trainedFrom })
    }

    func testPackedRowsRestartPositionsAndShiftTargets() {
        let options = BatchingOptions(batchSize: 2, maxSeqLen: 6, mode: .packed, padID: 0)
        let examples = [Self.example([11, 12, 13], trainedFrom: 2), Self.example([21, 22, 23, 24]), Self.example([31, 32])]
        let batch = Batch(rows: [[examples[0], examples[2]], [examples[1]]], options: options)
        XCTAssertEqual(batch.ids.scalars, [11, 12, 13, 31, 32, 0, 21, 22, 23, 24, 0, 0])
        XCTAssertEqual(batch.positions.scalars, [0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 0, 0])
        XCTAssertEqual(batch.segments.scalars, [0, 0, 0, 1, 1, -1, 0, 0, 0, 0, -1, -1])
        XCTAssertEqual(batch.targets.scalars, [-1, 13, -1, 32, -1, -1, 22, 23, 24, -1, -1, -1])
        XCTAssertEqual(batch.trainedTokens, 1 + 1 + 3)
        XCTAssertEqual(batch.realTokens, 9)
    }

    func testPlanPacksFirstFitDecreasingAndPadsOnePerRow() {
        // Lengths 3, 4, 2, 5 into rows of 6: 5 opens row 0, 4 row 1, 3 row 2, 2 joins row 1.
        let lengths = [3, 4, 2, 5]
        let packed = PackingPlan(lengths: lengths, order: [0, 1, 2, 3], options: BatchingOptions(batchSize: 2, maxSeqLen: 6, mode: .packed))
        XCTAssertEqual(packed.rows(ofBatch: 0).map(Array.init), [[3], [1, 2]])
        XCTAssertEqual(packed.rows(ofBatch: 1).map(Array.init), [[0]])
        XCTAssertEqual(packed.batchCount, 2)
        XCTAssertEqual(packed.efficiency, 14.0 / 18.0, accuracy: 1e-12)
        let padded = PackingPlan(lengths: lengths, order: [2, 0, 3, 1], options: BatchingOptions(batchSize: 3, maxSeqLen: 6, mode: .padded))
        XCTAssertEqual(padded.rows(ofBatch: 0).map(Array.init), [[2], [0], [3]])
        XCTAssertEqual(padded.rows(ofBatch: 1).map(Array.init), [[1]])
    }

    func testPackingFillsRowsOnASkewedLengthDistribution() {
        // Many short answers, a long tail up to the row length (like FOLDOC at 512 tokens).
        var rng = RandomGenerator(seed: 11)
        let lengths = (0..<6000).map { _ -> Int in
            let u = Double(rng.nextUniform())
            return min(512, 20 + Int(40 * Foundation.exp(3.2 * u * u)))
        }
        let examples = lengths.enumerated().map { i, n in Self.example((0..<n).map { Int32(($0 + i) % 1000) }) }
        let dataset = TokenizedDataset(path: "mem", examples: examples, statistics: DataStatistics())
        let options = BatchingOptions(batchSize: 4, maxSeqLen: 512)
        for seed: UInt64? in [nil, 1, 2] {
            let plan = dataset.plan(options, seed: seed)
            XCTAssertGreaterThanOrEqual(plan.efficiency, 0.95, "seed \(String(describing: seed))")
            XCTAssertEqual(plan.members.sorted(), Array(0..<lengths.count), "every example exactly once")
            for r in 0..<plan.rowCount {
                XCTAssertLessThanOrEqual(plan.members[plan.rowStarts[r]..<plan.rowStarts[r + 1]].reduce(0) { $0 + lengths[$1] }, 512)
            }
            // What in-order filling (a new row whenever the next example does not fit) gets:
            // the plan must beat it, or the test distribution is too easy to mean anything.
            var rows = 1, used = 0
            for i in (seed.map { BatchStream.permutation(count: lengths.count, seed: $0, epoch: 0) } ?? Array(lengths.indices)) {
                if used + lengths[i] > 512 { rows += 1; used = 0 }
                used += lengths[i]
            }
            XCTAssertLessThan(Double(lengths.reduce(0, +)) / Double(rows * 512), plan.efficiency - 0.05)
        }
        // The stream serves the plan: one epoch's batches hold every example once.
        var stream = BatchStream(dataset: dataset, options: options, seed: 3)
        var seen = 0
        for _ in 0..<stream.plan.batchCount { seen += stream.next().examples }
        XCTAssertEqual(seen, lengths.count)
        XCTAssertEqual(stream.cursor, DataCursor(epoch: 0, index: stream.plan.batchCount))
        _ = stream.next()
        XCTAssertEqual(stream.cursor, DataCursor(epoch: 1, index: 1))
    }

    func testOverLongExamplesAreTruncatedOrDroppedAndCounted() throws {
        let path = try Self.temporaryFile((0..<5).map { #"{"text": "\#(String(repeating: "word ", count: $0 * 10))end"}"# }.joined(separator: "\n"))
        let (tokenizer, _) = try Self.smollm2()
        let file = try JSONLFile(path: path)
        let encoder = ExampleEncoder(tokenizer: tokenizer, template: nil, trainOn: .all)
        let truncating = try TokenizedDataset(file: file, encoder: encoder, batching: BatchingOptions(maxSeqLen: 16, overLong: .truncate))
        XCTAssertEqual(truncating.statistics.truncated, 3)
        XCTAssertEqual(truncating.examples.count, 5)
        XCTAssertTrue(truncating.examples.allSatisfy { $0.ids.count <= 16 })
        let dropping = try TokenizedDataset(file: file, encoder: encoder, batching: BatchingOptions(maxSeqLen: 16, overLong: .drop))
        XCTAssertEqual(dropping.statistics.droppedTooLong, 3)
        XCTAssertEqual(dropping.examples.count, 2)
    }

    func testShuffleIsSeededAndResumeContinuesWithTheNextExample() {
        let examples = (0..<37).map { Self.example([Int32($0), Int32($0 + 100), 7]) }
        let dataset = TokenizedDataset(path: "mem", examples: examples, statistics: DataStatistics())
        let options = BatchingOptions(batchSize: 2, maxSeqLen: 6)
        var a = BatchStream(dataset: dataset, options: options, seed: 5)
        var straight: [[Int32]] = []
        for _ in 0..<30 { straight.append(a.next().ids.scalars) }
        var b = BatchStream(dataset: dataset, options: options, seed: 5)
        for _ in 0..<11 { _ = b.next() }
        var resumed = BatchStream(dataset: dataset, options: options, seed: 5, cursor: b.cursor)
        var continued: [[Int32]] = []
        for _ in 0..<19 { continued.append(resumed.next().ids.scalars) }
        XCTAssertEqual(Array(straight[11...]), continued)
        XCTAssertGreaterThan(a.cursor.epoch, 0)
        // Different epochs and seeds give different orders; every example appears once per epoch.
        XCTAssertNotEqual(BatchStream.permutation(count: 37, seed: 5, epoch: 0), BatchStream.permutation(count: 37, seed: 5, epoch: 1))
        XCTAssertNotEqual(BatchStream.permutation(count: 37, seed: 5, epoch: 0), BatchStream.permutation(count: 37, seed: 6, epoch: 0))
        XCTAssertEqual(BatchStream.permutation(count: 37, seed: 5, epoch: 3).sorted(), Array(0..<37))
    }

    // MARK: FOLDOC

    func testFOLDOCEntriesBecomeCleanChatExamples() throws {
        guard FileManager.default.fileExists(atPath: FOLDOC.defaultDirectory + "/foldoc.index") else {
            throw XCTSkip("dict-foldoc is not installed: run scripts/setup.sh")
        }
        let foldoc = try FOLDOC()
        XCTAssertGreaterThan(foldoc.entries.count, 11_000)
        func definition(_ term: String) throws -> String { try XCTUnwrap(foldoc.entries.first { $0.term == term }).definition }
        let recursion = try definition("recursion"), cascade = try definition("cascade")
        XCTAssertTrue(recursion.hasPrefix("When a function (or procedure) calls itself. Such a function"), recursion)
        // A cross-reference spanning lines and a blank-looking line, with its URL dropped.
        XCTAssertEqual(try definition("dbx"), "A source-level debugger originating from BSD Unix but now available for many other Unix distributions.\n\nSun documentation.")
        // Numbered senses keep their number, lose the category; quoted braces are characters.
        XCTAssertTrue(cascade.hasPrefix("1. A huge volume of spurious error-messages output by a compiler with poor error recovery."), cascade)
        XCTAssertTrue(cascade.contains("a missing \")\" or \"}\")"))
        // Markup is gone: braces survive only in the few entries about code or the characters.
        XCTAssertLessThan(foldoc.entries.filter { $0.definition.contains("{") }.count, foldoc.entries.count / 100)
        XCTAssertFalse(foldoc.entries.contains { $0.term.hasPrefix("00-database") })
        // A few entries have an unclosed category tag ("<language A query language…"): left as written.
        XCTAssertLessThan(foldoc.entries.filter { $0.definition.hasPrefix("<") }.count, 10)
        let a = foldoc.chatSplits(seed: 1), b = foldoc.chatSplits(seed: 1)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.train.count + a.valid.count + a.test.count, foldoc.entries.count)
        XCTAssertTrue(Set(a.valid).isDisjoint(with: a.train))
        let line = try JSONReader.parse(a.train[0])
        guard case .object(let keys, _) = line else { return XCTFail("not an object") }
        XCTAssertEqual(keys, ["messages"])
    }

    func testBrokenDictionaryFilesAreReported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("foldoc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try FOLDOC(directory: dir)) { XCTAssertTrue("\($0)".contains("foldoc.index")) }
        try "word\tA\tB\n".write(toFile: dir + "/foldoc.index", atomically: true, encoding: .utf8)
        try Data("not gzip".utf8).write(to: URL(fileURLWithPath: dir + "/foldoc.dict.dz"))
        XCTAssertThrowsError(try FOLDOC(directory: dir)) { XCTAssertTrue("\($0)".contains("damaged gzip"), "\($0)") }
    }
}
