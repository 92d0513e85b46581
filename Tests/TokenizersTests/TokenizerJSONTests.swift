import Foundation
import Formats
import Tokenizers
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
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        let url = Self.fixtures.appendingPathComponent("tokenizer-json/\(skeleton).skeleton.json")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var model = try XCTUnwrap(json["model"] as? [String: Any])
        model["vocab"] = vocab
        model["merges"] = mergesAsPairs ? merges.map { $0.split(separator: " ", maxSplits: 1).map(String.init) } as [Any] : merges
        json["model"] = model
        let out = directory.appendingPathComponent("\(skeleton)/tokenizer.json")
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: json).write(to: out)
        return out.path
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
    }
}
