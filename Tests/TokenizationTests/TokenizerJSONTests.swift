import Foundation
import Formats
import Tokenization
import XCTest

/// tokenizer.json files as Hugging Face writes them (Fixtures/tokenizer-json/*.skeleton.json,
/// from make_tokenizer_json_skeletons.py) with the vocabulary and merges put back from the GGUF
/// the id goldens were made from: reading the file must give Hugging Face's ids.
final class TokenizerJSONTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Corpus: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases: [Case]
    }

    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-tokenizer-json-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// A full tokenizer.json: the skeleton plus vocab and merges from `gguf`, merges spelled
    /// "a b" or as ["a", "b"] pairs (both spellings exist in the wild).
    func assemble(_ skeleton: String, gguf path: String, mergesAsPairs: Bool) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) missing: run scripts/setup.sh") }
        let m = try GGUFFile(path: path).metadata
        let tokens = try XCTUnwrap(m["tokenizer.ggml.tokens"]?.array).compactMap(\.string)
        let merges = try XCTUnwrap(m["tokenizer.ggml.merges"]?.array).compactMap(\.string)
        // Written as text: a Swift dictionary (or JSONSerialization) would merge canonically
        // equivalent tokens, which Gemma's vocabulary has, and HF keeps apart.
        var seen = Set<[UInt8]>(), vocab: [String] = []
        for (i, t) in tokens.enumerated() where seen.insert(Array(t.utf8)).inserted { vocab.append("\(Self.quoted(t)): \(i)") }
        let mergeItems = merges.map { merge -> String in
            guard mergesAsPairs, let space = merge.utf8.firstIndex(of: 0x20) else { return Self.quoted(merge) }
            let left = String(decoding: merge.utf8[..<space], as: UTF8.self), right = String(decoding: merge.utf8[merge.utf8.index(after: space)...], as: UTF8.self)
            return "[\(Self.quoted(left)), \(Self.quoted(right))]"
        }
        let url = Self.fixtures.appendingPathComponent("tokenizer-json/\(skeleton).skeleton.json")
        var text = try String(contentsOf: url, encoding: .utf8)
        for (empty, filled) in [("\"vocab\": {}", "\"vocab\": {\(vocab.joined(separator: ","))}"), ("\"merges\": []", "\"merges\": [\(mergeItems.joined(separator: ","))]")] {
            guard let range = text.range(of: empty) else { throw XCTSkip("skeleton \(skeleton) lacks \(empty)") }
            text.replaceSubrange(range, with: filled)
        }
        let out = directory.appendingPathComponent("\(skeleton)/tokenizer.json")
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: out)
        return out.path
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    func assertMatches(_ tokenizer: any Tokenizer, corpus name: String, parseSpecial: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let corpus = try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("\(name)-corpus.json")))
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 300, file: file, line: line)
        var failures = 0
        for c in corpus.cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: parseSpecial)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(name): \(c.text.debugDescription) → \(ids), Hugging Face \(c.ids)", file: file, line: line) }
            }
        }
        XCTAssertEqual(failures, 0, "\(name): \(failures) of \(corpus.cases.count) strings differ", file: file, line: line)
    }

    func testSmolLM2WithStringMerges() throws {
        let path = try assemble("smollm2", gguf: CacheLocation.embeddedModel, mergesAsPairs: false)
        let tokenizer = try makeTokenizer(tokenizerJSON: path)
        try assertMatches(tokenizer, corpus: "smollm2", parseSpecial: true)
        XCTAssertEqual(tokenizer.specialTokens["<|im_start|>"], 1)
    }

    func testLlama3WithPairMergesAndTemplateBOS() throws {
        let path = try assemble("llama3", gguf: CacheLocation.llamaCppFixtures + "/ggml-vocab-llama-bpe.gguf", mergesAsPairs: true)
        let tokenizer = try makeTokenizer(tokenizerJSON: path)
        try assertMatches(tokenizer, corpus: "llama3", parseSpecial: false)
        // The post-processor's "<|begin_of_text|> $A" puts BOS first (HF add_special_tokens=True).
        XCTAssertEqual(tokenizer.bos, 128000)
        XCTAssertEqual(try tokenizer.encode("Hello world").first, 128000)
    }

    func testQwen2WithNFC() throws {
        let path = try assemble("qwen2", gguf: CacheLocation.llamaCppFixtures + "/ggml-vocab-qwen2.gguf", mergesAsPairs: true)
        try assertMatches(makeTokenizer(tokenizerJSON: path), corpus: "qwen2", parseSpecial: false)
    }

    /// SentencePiece-style tokenizer.json: each way of spelling spaces as ▁ (Gemma's Replace,
    /// Llama 2's Prepend + Replace, Metaspace first as transformers converts Llama/Mistral,
    /// Metaspace always with split) over Gemma 4's vocabulary and merges, against HF's ids.
    func testSentencePieceSpacingVariants() throws {
        struct Spacing: Decodable {
            struct Case: Decodable { let text: String; let ids: [String: [Int32]] }
            let cases: [Case]
        }
        let corpus = try JSONDecoder().decode(Spacing.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("gemma4-spacing-corpus.json")))
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 300)
        for variant in ["replace", "prepend-replace", "metaspace-first", "metaspace-always-split"] {
            let path = try assemble("gemma4-\(variant)", gguf: CacheLocation.llamaCppFixtures + "/ggml-vocab-gemma-4.gguf", mergesAsPairs: variant.hasPrefix("metaspace"))
            let tokenizer = try makeTokenizer(tokenizerJSON: path)
            XCTAssertTrue(tokenizer is SentencePieceTokenizer, variant)
            var failures = 0
            for c in corpus.cases {
                let expected = try XCTUnwrap(c.ids[variant])
                let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: true)
                if ids != expected {
                    failures += 1
                    if failures <= 3 { XCTFail("\(variant): \(c.text.debugDescription) → \(ids), Hugging Face \(expected)") }
                }
            }
            XCTAssertEqual(failures, 0, "\(variant): \(failures) of \(corpus.cases.count) strings differ")
        }
    }

    // MARK: bad input

    func loadError(_ text: String, bytes: [UInt8]? = nil) -> String {
        let url = directory.appendingPathComponent("bad-\(UUID().uuidString).json")
        do {
            try Data(bytes ?? Array(text.utf8)).write(to: url)
            _ = try makeTokenizer(tokenizerJSON: url.path)
        } catch { return "\(error)" }
        return "no error"
    }

    func testSyntaxErrorNamesLineAndColumn() {
        // Python's json says: "Expecting ':' delimiter: line 3 column 12".
        let message = loadError("{\n  \"model\": {\n    \"type\" \"BPE\"\n  }\n}")
        XCTAssertTrue(message.contains("line 3, column 12"), message)
    }

    func testMissingPartsAndUnknownKindsAreNamed() {
        XCTAssertTrue(loadError("{\"version\": \"1.0\"}").contains("no \"model\""))
        XCTAssertTrue(loadError("{\"model\": {\"type\": \"BPE\", \"merges\": []}}").contains("model.vocab is missing"))
        XCTAssertTrue(loadError("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}").contains("model type 'WordPiece'"))
        let metaspace = "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}"
        XCTAssertTrue(loadError(metaspace).contains("pre_tokenizer Metaspace is not supported"), loadError(metaspace))
        XCTAssertTrue(loadError("", bytes: [0x7B, 0xFF, 0x7D]).contains("not UTF-8"))
        XCTAssertTrue(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}").contains("is not a token id"))
        XCTAssertTrue(loadError("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 16000000}, \"merges\": []}}").contains("only 1 tokens are named"))
    }
}
