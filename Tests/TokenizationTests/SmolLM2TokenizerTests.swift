import Foundation
import Formats
import Tokenization
import XCTest

/// SmolLM2's tokenizer, read from the embedded GGUF, against Hugging Face `tokenizers` on a
/// committed corpus of 520 strings (scripts/fixtures/tokenizers/make_smollm2_goldens.py):
/// whitespace runs, code, numbers, accents, CJK, emoji, special-token text.
final class SmolLM2TokenizerTests: XCTestCase {
    struct Corpus: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases: [Case]
    }

    static func tokenizer() throws -> BPETokenizer {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        return try BPETokenizer(gguf: GGUFFile(path: path))
    }

    func testIdsEqualHuggingFaceOnTheCorpus() throws {
        let tokenizer = try Self.tokenizer()
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/smollm2-corpus.json")
        let corpus = try JSONDecoder().decode(Corpus.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(corpus.cases.count, 300)
        var failures = 0
        for c in corpus.cases {
            let ids = try tokenizer.encode(c.text, addBOS: false)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(c.text.debugDescription) → \(ids), Hugging Face \(c.ids)") }
            }
            XCTAssertEqual(tokenizer.decode(ids), c.text, "round trip of \(c.text.debugDescription)")
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(corpus.cases.count) strings differ")
    }

    func testSpecialTokensAndTheirPlainTextForm() throws {
        let tokenizer = try Self.tokenizer()
        XCTAssertEqual(tokenizer.bos, 1)
        XCTAssertEqual(tokenizer.eos, 2)
        XCTAssertEqual(try tokenizer.encode("<|im_start|>", addBOS: false), [1])
        // User data that merely contains special-token text must not become control tokens.
        let plain = try tokenizer.encode("<|im_start|>", addBOS: false, parseSpecial: false)
        XCTAssertFalse(plain.contains(1))
        XCTAssertEqual(tokenizer.decode(plain), "<|im_start|>")
    }
}
