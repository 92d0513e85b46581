import Foundation
import Formats
import Tokenization
import XCTest

/// SentencePiece rules the reference files do not pin alone: BOS by default, the dummy prefix
/// after special tokens, decode as the exact inverse, and invalid UTF-8 input. Expected ids are
/// Hugging Face's (transformers 5.23 conversion of ggml-vocab-phi-3.gguf, as in
/// make_sentencepiece_goldens.py).
final class SentencePieceTokenizerTests: XCTestCase {
    static func phi3() throws -> any Tokenizer {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-phi-3.gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        return try makeTokenizer(gguf: GGUFFile(path: path))
    }

    func testBOSByDefaultAsTheModelAsks() throws {
        let tokenizer = try Self.phi3()
        XCTAssertTrue(tokenizer is SentencePieceTokenizer)
        XCTAssertEqual(try tokenizer.encode("Hello world"), [1, 15043, 3186]) // HF tok("Hello world").input_ids
        XCTAssertEqual(try tokenizer.encode("Hello world", addBOS: false), [15043, 3186])
        XCTAssertEqual(try tokenizer.encode("", addBOS: false), [])
    }

    /// A ▁ goes before the text after each special token, as HF's per-segment normalizer does;
    /// decode removes exactly those, so chat text round-trips byte for byte.
    func testDummyPrefixAfterSpecialTokensAndExactDecode() throws {
        let tokenizer = try Self.phi3()
        let text = "<|user|>\nHi<|end|>\n<|assistant|>"
        let ids = try tokenizer.encode(text, addBOS: false)
        XCTAssertEqual(ids, [32010, 29871, 13, 18567, 32007, 29871, 13, 32001]) // HF encode(…, add_special_tokens=False)
        XCTAssertEqual(tokenizer.decode(ids), text)
        XCTAssertEqual(tokenizer.decodedLengths(ids).reduce(0, +), text.utf8.count)
        XCTAssertEqual(tokenizer.decode(try tokenizer.encode("  two spaces")), "<s>  two spaces")
        // Streaming one token at a time keeps the space a mid-text "▁Hi" stands for.
        XCTAssertEqual(tokenizer.tokenBytes(15043), Array(" Hello".utf8))
    }

    func testInvalidUTF8IsAnErrorNamingTheOffset() throws {
        let tokenizer = try Self.phi3()
        XCTAssertThrowsError(try tokenizer.encode(utf8: Array("abc".utf8) + [0xC3, 0x28])) { error in
            XCTAssertTrue("\(error)".contains("offset 3"), "\(error)")
        }
        XCTAssertEqual(try tokenizer.encode(utf8: Array("Hello world".utf8), addBOS: false), [15043, 3186])
    }
}
