import Foundation
import Formats
import Tokenization
import XCTest

/// Ids against llama.cpp's reference files: vocabulary-only GGUFs of real tokenizers with test
/// strings (.inp) and the ids llama.cpp's tokenizer gives them (.out), from the
/// llama-cpp-python 0.3.36 source package that scripts/setup.sh unpacks into the cache.
final class LlamaCppVocabularyTests: XCTestCase {
    static var directory: String { CacheLocation.llamaCppFixtures }

    /// The test strings and reference ids of one vocabulary.
    static func cases(_ vocabulary: String) throws -> [(text: String, ids: [Int32])] {
        let base = directory + "/ggml-vocab-\(vocabulary).gguf"
        guard FileManager.default.fileExists(atPath: base + ".inp") else {
            throw XCTSkip("llama.cpp fixtures missing in \(directory): run scripts/setup.sh")
        }
        let input = try String(contentsOfFile: base + ".inp", encoding: .utf8)
        let output = try String(contentsOfFile: base + ".out", encoding: .utf8)
        var texts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
        if texts.last == "" { texts.removeLast() }
        var lines = output.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        XCTAssertEqual(texts.count, lines.count, "\(vocabulary): .inp and .out disagree in length")
        return zip(texts, lines).map { text, line in (text, line.split(separator: " ").compactMap { Int32($0) }) }
    }

    func assertMatchesLlamaCpp(_ vocabulary: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try Self.cases(vocabulary)
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: Self.directory + "/ggml-vocab-\(vocabulary).gguf"))
        XCTAssertGreaterThan(cases.count, 30, file: file, line: line)
        var failures = 0
        for c in cases {
            let ids = try tokenizer.encode(c.text, addBOS: false, parseSpecial: false)
            if ids != c.ids {
                failures += 1
                if failures <= 5 { XCTFail("\(vocabulary): \(c.text.debugDescription) → \(ids), llama.cpp \(c.ids)", file: file, line: line) }
            }
            XCTAssertEqual(tokenizer.decodeBytes(ids), Array(c.text.utf8), "\(vocabulary): round trip of \(c.text.debugDescription)", file: file, line: line)
        }
        XCTAssertEqual(failures, 0, "\(vocabulary): \(failures) of \(cases.count) strings differ", file: file, line: line)
    }

    func testGPT2() throws { try assertMatchesLlamaCpp("gpt-2") }
    /// StarCoder and Refact split digits first, exactly like SmolLM2 (llama.cpp's `smollm`).
    func testStarCoderDigitRule() throws { try assertMatchesLlamaCpp("starcoder") }
    func testRefactDigitRule() throws { try assertMatchesLlamaCpp("refact") }
    /// Llama 3: case-insensitive contractions, a non-letter glued before words, digits in threes.
    func testLlama3() throws { try assertMatchesLlamaCpp("llama-bpe") }
    /// Qwen2: Llama 3's pattern with single digits.
    func testQwen2() throws { try assertMatchesLlamaCpp("qwen2") }
    /// Llama 2 / Mistral SentencePiece: ▁ for spaces, dummy prefix, byte fallback.
    func testLlamaSentencePiece() throws { try assertMatchesLlamaCpp("llama-spm") }
    func testPhi3SentencePiece() throws { try assertMatchesLlamaCpp("phi-3") }
    /// Gemma 4: ▁ spaces and byte fallback, merges ranked by a merge list, no dummy prefix.
    func testGemma4() throws { try assertMatchesLlamaCpp("gemma-4") }
}
