import Foundation
import Formats
import Tokenization
import XCTest

/// Each tokenizer kind against Hugging Face on the SmolLM2 corpus plus edge cases, with
/// llama.cpp's vocabulary-only GGUFs: Llama 3 and Qwen2 byte-level BPE
/// (scripts/fixtures/tokenizers/make_bpe_family_goldens.py), Llama 2 and Phi-3 SentencePiece
/// (make_sentencepiece_goldens.py), Gemma 4 (make_gemma4_goldens.py).
final class ReferenceCorpusTests: XCTestCase {
    struct Corpus: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32]; let pieces: [String]? }
        let cases: [Case]
    }

    func assertMatchesCorpus(_ fixture: String, vocabulary: String, parseSpecial: Bool = false, nfc: Bool = false,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-\(vocabulary).gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: path))
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(fixture)-corpus.json")
        let corpus = try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 300, file: file, line: line)
        var failures = 0, splitFailures = 0
        for c in corpus.cases {
            // Where the goldens hold Hugging Face's pre-token pieces, the scanner must give them
            // (BPE alone can hide a wrong split behind identical ids).
            if let expected = c.pieces, let bpe = tokenizer as? BPETokenizer {
                let pieces = bpe.preTokenizer.split(c.text[...].unicodeScalars).map { String($0) }
                if pieces != expected {
                    splitFailures += 1
                    if splitFailures <= 5 { XCTFail("\(fixture): pieces of \(c.text.debugDescription): \(pieces), Hugging Face \(expected)", file: file, line: line) }
                }
            }
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: parseSpecial)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(fixture): \(c.text.debugDescription) → \(ids), Hugging Face \(c.ids)", file: file, line: line) }
            }
            // Qwen2 normalizes to NFC, so its decode is the canonically equivalent NFC text;
            // SentencePiece spells spaces ▁, so a literal ▁ comes back a space (as in Hugging Face).
            var expected = nfc ? c.text.precomposedStringWithCanonicalMapping : c.text
            if tokenizer is SentencePieceTokenizer { expected = expected.replacingOccurrences(of: "▁", with: " ") }
            XCTAssertEqual(tokenizer.decodeBytes(ids), Array(expected.utf8), "\(fixture): round trip of \(c.text.debugDescription)", file: file, line: line)
        }
        XCTAssertEqual(failures, 0, "\(fixture): \(failures) of \(corpus.cases.count) strings differ", file: file, line: line)
        XCTAssertEqual(splitFailures, 0, "\(fixture): \(splitFailures) of \(corpus.cases.count) strings split differently", file: file, line: line)
    }

    func testLlama3IdsEqualHuggingFace() throws { try assertMatchesCorpus("llama3", vocabulary: "llama-bpe") }
    func testQwen2IdsEqualHuggingFace() throws { try assertMatchesCorpus("qwen2", vocabulary: "qwen2", nfc: true) }
    func testLlama2SentencePieceIdsEqualHuggingFace() throws { try assertMatchesCorpus("llama-spm", vocabulary: "llama-spm", parseSpecial: true) }
    func testPhi3SentencePieceIdsEqualHuggingFace() throws { try assertMatchesCorpus("phi3", vocabulary: "phi-3", parseSpecial: true) }
    func testGemma4IdsEqualHuggingFace() throws { try assertMatchesCorpus("gemma4", vocabulary: "gemma-4", parseSpecial: true) }

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
