import Foundation
import Formats
@testable import Tokenization
import XCTest

/// The word-by-word, cached SentencePiece path against its naive twin (merges over the whole
/// stretch at once) on seeded random text: splitting at word starts must never change ids.
final class SentencePieceWordCacheTests: XCTestCase {
    func testWordsEncodeAsTheWholeStretchDoes() throws {
        for vocabulary in ["llama-spm", "phi-3", "gemma-4"] {
            let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-\(vocabulary).gguf"
            guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
            let tokenizer = try SentencePieceTokenizer(gguf: GGUFFile(path: path))
            // Llama 2 and Phi-3 pieces keep ▁ in front; the cache path must be the one in use.
            if vocabulary != "gemma-4" { XCTAssertTrue(tokenizer.wordsAreIndependent, vocabulary) }
            guard tokenizer.wordsAreIndependent else { continue }
            var random = RoundTripTests.SplitMix(state: 7)
            for _ in 0..<300 {
                let count = Int.random(in: 1...16, using: &random)
                let text = (0..<count).map { _ in RoundTripTests.fragments.randomElement(using: &random) ?? "" }.joined()
                var cached: [Int32] = [], whole: [Int32] = []
                try tokenizer.encodeText(text[...], dummyPrefix: true, into: &cached)
                let bytes = Array("▁".utf8) + Array(text.utf8).flatMap { $0 == 0x20 ? Array("▁".utf8) : [$0] }
                try tokenizer.encodeWord(bytes[...], into: &whole)
                XCTAssertEqual(cached, whole, "\(vocabulary): \(text.debugDescription)")
            }
        }
    }
}
