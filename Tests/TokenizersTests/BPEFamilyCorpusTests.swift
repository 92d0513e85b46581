import Foundation
import Formats
import Tokenizers
import XCTest

/// Llama 3 and Qwen2 pre-tokenizers against Hugging Face `tokenizers` on the SmolLM2 corpus plus
/// pattern edge cases (scripts/fixtures/tokenizers/make_bpe_family_goldens.py), with
/// llama.cpp's vocabulary-only GGUFs.
final class BPEFamilyCorpusTests: XCTestCase {
    struct Corpus: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases: [Case]
    }

    func assertMatchesCorpus(_ fixture: String, vocabulary: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-\(vocabulary).gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: path))
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(fixture)-corpus.json")
        let corpus = try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 300, file: file, line: line)
        var failures = 0
        for c in corpus.cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: false)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(fixture): \(c.text.debugDescription) → \(ids), Hugging Face \(c.ids)", file: file, line: line) }
            }
            // Qwen2 normalizes to NFC, so its decode is the canonically equivalent NFC text.
            let expected = tokenizer.normalizer == .nfc ? c.text.precomposedStringWithCanonicalMapping : c.text
            XCTAssertEqual(tokenizer.decodeBytes(ids), Array(expected.utf8), "\(fixture): round trip of \(c.text.debugDescription)", file: file, line: line)
        }
        XCTAssertEqual(failures, 0, "\(fixture): \(failures) of \(corpus.cases.count) strings differ", file: file, line: line)
    }

    func testLlama3IdsEqualHuggingFace() throws { try assertMatchesCorpus("llama3", vocabulary: "llama-bpe") }
    func testQwen2IdsEqualHuggingFace() throws { try assertMatchesCorpus("qwen2", vocabulary: "qwen2") }

    /// The scanners' pieces for the pattern's corners, as Hugging Face's Split gives them.
    func testLlama3PiecesOnPatternCorners() {
        func pieces(_ s: String, _ p: PreTokenizer) -> [String] { p.split(s[...].unicodeScalars).map { String($0) } }
        XCTAssertEqual(pieces("I'M 12345", .llama3), ["I", "'M", " ", "123", "45"])
        XCTAssertEqual(pieces("I'M 12345", .qwen2), ["I", "'M", " ", "1", "2", "3", "4", "5"])
        XCTAssertEqual(pieces("a\n\n b", .llama3), ["a", "\n\n", " b"])
        XCTAssertEqual(pieces("x!!\n\ny", .llama3), ["x", "!!\n\n", "y"])
        XCTAssertEqual(pieces("\tfoo  bar", .llama3), ["\tfoo", " ", " bar"])
    }
}
