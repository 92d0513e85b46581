import Dispatch
import Foundation
import Formats
@testable import Tokenization
import XCTest

/// Hostile text: one unbroken string (a base64 blob, a hash list, minified code) is one
/// pre-token, and the rescanning merge costs O(n²) in it (issue 22: 20,000 letters took 5.7 s,
/// 100,000 took 71 s in a release build). The queued merge takes 1,000,000 in a few seconds even
/// in a debug build on a loaded machine, and the word cache neither keeps nor grows by it.
final class LongInputTests: XCTestCase {
    /// Letters only, so every byte-level pre-tokenizer keeps it as one piece (digits and
    /// punctuation would be split off), from a seeded generator.
    static func blob(_ count: Int, seed: UInt64) -> String {
        var random = RoundTripTests.SplitMix(state: seed)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        return String(decoding: (0..<count).map { _ in alphabet.randomElement(using: &random) ?? 0x61 }, as: UTF8.self)
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// 20,000 characters first (the rescan needs several seconds there even in release, so an
    /// O(n²) merge fails here quickly instead of running for hours), then 1,000,000.
    func check(_ tokenizer: any Tokenizer, name: String) throws {
        for (count, limit) in [(20_000, 5.0), (1_000_000, 90.0)] {
            // One letter repeated: every pair equal, the most stale queue entries.
            let run = String(repeating: "a", count: count)
            for text in [Self.blob(count, seed: UInt64(count))] + (count < 1_000_000 || tokenizer is BPETokenizer ? [run] : []) {
                var ids: [Int32] = []
                let elapsed = try Self.seconds { ids = try tokenizer.encode(text, addBOS: false, parseSpecial: false) }
                print("\(name): \(count) characters (\(text.prefix(3))…) in \(String(format: "%.3f", elapsed)) s, \(ids.count) tokens")
                XCTAssertLessThan(elapsed, limit, "\(name): \(count) characters without a space took \(elapsed) s")
                XCTAssertLessThan(ids.count, count, "\(name): nothing merged")
                XCTAssertEqual(tokenizer.decode(ids).replacingOccurrences(of: "▁", with: " ").trimmingCharacters(in: .whitespaces), text, name)
            }
        }
    }

    func testMillionCharactersWithoutASpaceByteLevel() throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let tokenizer = try BPETokenizer(gguf: GGUFFile(path: CacheLocation.embeddedModel))
        try check(tokenizer, name: "SmolLM2")
        // Nothing that long was remembered, and the cache stays inside its byte budget.
        let (entries, bytes) = tokenizer.cache.withLock { ($0.entries.count, $0.bytes) }
        XCTAssertLessThanOrEqual(entries, 1)
        XCTAssertLessThanOrEqual(bytes, WordCache<String>.defaultMaxBytes)
    }

    /// Scores (Llama 2) and a merge list (Gemma 4; Gemma 3's scores give the same ids).
    func testMillionCharactersWithoutASpaceSentencePiece() throws {
        var checked = 0
        for path in [CacheLocation.llamaCppFixtures + "/ggml-vocab-llama-spm.gguf", CacheLocation.llamaCppFixtures + "/ggml-vocab-gemma-4.gguf"] where FileManager.default.fileExists(atPath: path) {
            let tokenizer = try SentencePieceTokenizer(gguf: GGUFFile(path: path))
            try check(tokenizer, name: (path as NSString).lastPathComponent)
            XCTAssertLessThanOrEqual(tokenizer.cache.withLock { $0.entries.count }, 1)
            checked += 1
        }
        if checked == 0 { throw XCTSkip("no SentencePiece vocabulary: run scripts/setup.sh") }
    }

    func testWordCacheIsBounded() {
        var cache = WordCache<String>(maxKeyBytes: 8, maxEntries: 4, maxBytes: 1_000)
        cache.insert("far too long", keyBytes: 12, ids: [1])
        XCTAssertNil(cache.lookup("far too long"), "a piece over maxKeyBytes is never stored")
        for i in 0..<10 { cache.insert("w\(i)", keyBytes: 2, ids: [Int32(i)]) }
        XCTAssertLessThanOrEqual(cache.entries.count, 4)
        XCTAssertEqual(cache.lookup("w9"), [9], "the newest entry survives a reset")
        var small = WordCache<String>(maxKeyBytes: 100, maxEntries: 1_000, maxBytes: 300)
        for i in 0..<50 { small.insert("word\(i)", keyBytes: 5, ids: Array(repeating: 7, count: 20)) }
        XCTAssertLessThanOrEqual(small.bytes, 300)
        XCTAssertGreaterThan(small.entries.count, 0)
        XCTAssertEqual(small.lookup("word49"), Array(repeating: 7, count: 20))
    }
}
