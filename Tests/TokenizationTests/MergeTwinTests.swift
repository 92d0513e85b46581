import Foundation
import Formats
@testable import Tokenization
import XCTest

/// The priority-queue merges against their rescanning twins (byte-level `mergeSymbolsQueued` vs
/// `mergeSymbolsNaive`, SentencePiece `encodeWord` vs `encodeWordNaive`) on seeded random text,
/// repetitive runs (the worst case for stale queue entries) and the committed reference corpus,
/// every vocabulary Lorikeet claims, on whole strings (no pre-tokenizing, so pieces are long).
final class MergeTwinTests: XCTestCase {
    static let byteLevel = ["gpt-2", "starcoder", "refact", "llama-bpe", "qwen2"]
    static let sentencePiece = ["llama-spm", "phi-3", "gemma-4"]

    static func path(_ vocabulary: String) throws -> String {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-\(vocabulary).gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        return path
    }

    /// Texts to merge: random fragment strings, runs of one or two letters, random letters from a
    /// small alphabet (many equal pairs at once), and the reference corpus joined in groups.
    static func texts(seed: UInt64) throws -> [String] {
        var random = RoundTripTests.SplitMix(state: seed)
        var texts: [String] = []
        for _ in 0..<150 {
            let count = Int.random(in: 1...40, using: &random)
            texts.append((0..<count).map { _ in RoundTripTests.fragments.randomElement(using: &random) ?? "" }.joined())
        }
        for length in [1, 2, 3, 7, 23, 24, 25, 64, 257, 1000] {
            texts.append(String(repeating: "a", count: length))
            texts.append(String(repeating: "ab", count: length))
            texts.append(String((0..<length).map { _ in "aAbe ".randomElement(using: &random) ?? "a" }))
            texts.append(String((0..<length).map { _ in "0123456789abcdefghijklmnopqrstuvwxyz".randomElement(using: &random) ?? "a" }))
        }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/smollm2-corpus.json")
        let corpus = try JSONDecoder().decode(SmolLM2TokenizerTests.Corpus.self, from: Data(contentsOf: url))
        let lines = corpus.cases.map(\.text)
        for start in stride(from: 0, to: lines.count, by: 8) { texts.append(lines[start..<min(start + 8, lines.count)].joined(separator: " ")) }
        return texts
    }

    func testByteLevelQueuedMergesEqualTheRescan() throws {
        var paths = try Self.byteLevel.map(Self.path)
        if FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) { paths.append(CacheLocation.embeddedModel) }
        let texts = try Self.texts(seed: 11)
        for path in paths {
            let tokenizer = try BPETokenizer(gguf: GGUFFile(path: path))
            var failures = 0
            for text in texts {
                let symbols = text.utf8.map { tokenizer.byteIDs[Int($0)] >= 0 ? tokenizer.byteIDs[Int($0)] : (tokenizer.unknown ?? 0) }
                var queued = symbols, naive = symbols
                tokenizer.mergeSymbolsQueued(&queued)
                tokenizer.mergeSymbolsNaive(&naive)
                if queued != naive {
                    failures += 1
                    if failures <= 3 { XCTFail("\(path): \(text.prefix(80).debugDescription) → \(queued.prefix(20)), rescan \(naive.prefix(20))") }
                }
            }
            XCTAssertEqual(failures, 0, "\(path): \(failures) of \(texts.count) texts differ")
        }
    }

    func testSentencePieceQueuedMergesEqualTheRescan() throws {
        var tokenizers: [(String, SentencePieceTokenizer)] = try Self.sentencePiece.map { ($0, try SentencePieceTokenizer(gguf: GGUFFile(path: Self.path($0)))) }
        // Metaspace(split: true): no merge across the start of a ▁ (only tokenizer.json sets it).
        let llama = tokenizers[0].1
        tokenizers.append(("llama-spm split", try SentencePieceTokenizer(
            tokens: llama.tokens, scores: llama.scores, tokenTypes: llama.kinds.map { Int($0.rawValue) }, bos: llama.bos, eos: llama.eos,
            unknown: llama.unknown, addBOS: false, spacePrefix: .everyStretch, splitBeforeSpaces: true, source: "llama-spm split")))
        if FileManager.default.fileExists(atPath: CacheLocation.models + "/gemma-3-270m-q4_k_m.gguf") {
            tokenizers.append(("gemma-3", try SentencePieceTokenizer(gguf: GGUFFile(path: CacheLocation.models + "/gemma-3-270m-q4_k_m.gguf"))))
        }
        let texts = try Self.texts(seed: 12)
        for (name, tokenizer) in tokenizers {
            var failures = 0
            for text in texts {
                let word = Array("▁".utf8) + Array(text.utf8).flatMap { $0 == 0x20 ? Array("▁".utf8) : [$0] }
                var queued: [Int32] = [], naive: [Int32] = []
                try tokenizer.encodeWord(word[...], into: &queued)
                try tokenizer.encodeWordNaive(word[...], into: &naive)
                if queued != naive {
                    failures += 1
                    if failures <= 3 { XCTFail("\(name): \(text.prefix(80).debugDescription) → \(queued.prefix(20)), rescan \(naive.prefix(20))") }
                }
            }
            XCTAssertEqual(failures, 0, "\(name): \(failures) of \(texts.count) texts differ")
        }
    }
}
