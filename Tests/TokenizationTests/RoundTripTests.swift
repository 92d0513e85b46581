import Foundation
import Formats
import Tokenization
import XCTest

/// decode(encode(s)) == s on seeded random text for every vocabulary Lorikeet claims, with and
/// without special-token parsing: whitespace of every kind, combining marks, CJK, emoji with
/// joiners and modifiers, digits, contractions, literal special-token text and ▁.
final class RoundTripTests: XCTestCase {
    /// SplitMix64: the test's own seeded generator (this target links no TensorCore).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let fragments: [String] = [
        "a", "Z", "hello", " world", "DON'T", "'s", "'ll", "'ſ", "0", "42", "12345", "3.14", " ", "  ", "\t", "\n", "\r\n", "\n\n",
        "\u{00A0}", "\u{3000}", "\u{2028}", "\u{0085}", "\u{200B}", "e\u{301}", "\u{301}", "é", "Ä", "ß", "ſ", "中文", "日本", "한국",
        "ไทย", "हिंदी", "ह\u{948}", "😀", "👨\u{200D}👩\u{200D}👧", "👍🏽", "🇫🇷", "▁", "<|im_start|>", "<|endoftext|>", "<s>", "</s>",
        "<|user|>", "<0x0A>", "[PAD]", "{", "}", "()", "=>", "!!", "...", "--", "#", "\\", "\"", "\u{0}", "\u{7F}", "\u{1C}",
    ]

    static let vocabularies = ["gpt-2", "starcoder", "refact", "llama-bpe", "qwen2", "llama-spm", "phi-3", "gemma-4"]

    func testRandomTextRoundTripsOnEveryVocabulary() throws {
        let directory = CacheLocation.llamaCppFixtures
        guard FileManager.default.fileExists(atPath: directory + "/ggml-vocab-gpt-2.gguf") else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        var paths = Self.vocabularies.map { directory + "/ggml-vocab-\($0).gguf" }
        if FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) { paths.append(CacheLocation.embeddedModel) }
        for path in paths {
            let tokenizer = try makeTokenizer(gguf: GGUFFile(path: path))
            let name = (path as NSString).lastPathComponent
            var random = SplitMix(state: 2024)
            var failures = 0
            for _ in 0..<300 {
                let count = Int.random(in: 1...12, using: &random)
                let text = (0..<count).map { _ in Self.fragments.randomElement(using: &random) ?? "" }.joined()
                for parseSpecial in [false, true] {
                    let ids = try tokenizer.encode(text, addBOS: false, parseSpecial: parseSpecial)
                    // The references' own lossy spots: Qwen2 normalizes to NFC; SentencePiece spells spaces ▁.
                    var expected = name.contains("qwen2") ? text.precomposedStringWithCanonicalMapping : text
                    if tokenizer is SentencePieceTokenizer { expected = expected.replacingOccurrences(of: "▁", with: " ") }
                    if tokenizer.decodeBytes(ids) != Array(expected.utf8) || tokenizer.decodedLengths(ids).reduce(0, +) != expected.utf8.count {
                        failures += 1
                        if failures <= 3 { XCTFail("\(name) parseSpecial \(parseSpecial): \(text.debugDescription) → \(tokenizer.decode(ids).debugDescription)") }
                    }
                }
            }
            XCTAssertEqual(failures, 0, "\(name): \(failures) of 600 encodings do not decode back")
        }
    }
}
