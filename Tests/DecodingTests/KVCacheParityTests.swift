import Foundation
import Architectures
import TensorCore
import XCTest

/// Cached decoding computes the logits transformers computes for the whole sequence at once,
/// for every architecture's tiny model (sliding windows of 4, Gemma 2's soft-caps and Gemma 3's local RoPE base included),
/// whether tokens arrive as a prompt, one by one, or in chunks.
final class KVCacheParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures").path

    struct Expected: Decodable { let ids: [[Int32]]; let logits_shape: [Int]; let logits: [Float] }

    func testCachedDecodingMatchesTransformersForEveryArchitecture() throws {
        for family in ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3"] {
            let folder = Self.fixtures + "/" + family
            let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
            let model = try DecoderModel(huggingFaceFolder: folder)
            let (t, v) = (expected.logits_shape[1], expected.logits_shape[2])
            let ids = expected.ids[0]
            XCTAssertGreaterThan(t, 6, "\(family): the sequence must outrun the window of 4")
            let cache = model.makeCache(capacity: t)
            // A prompt of 3, then single tokens, then the rest as one chunk.
            var chunks: [Range<Int>] = [0..<3, 3..<4, 4..<5, 5..<6]
            chunks.append(6..<t)
            for chunk in chunks {
                let logits = model.nextTokenLogits(ids: Array(ids[chunk]), cache: cache)
                let position = chunk.upperBound - 1
                let reference = Array(expected.logits[(position * v)..<((position + 1) * v)])
                let worst = zip(logits, reference).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThanOrEqual(worst, 1e-4, "\(family) position \(position)")
            }
            XCTAssertEqual(cache.length, t)
            XCTAssertEqual(cache.remaining, 0)
        }
    }

    func testTruncatedCacheRecomputesTheSameLogits() throws {
        let model = try DecoderModel(huggingFaceFolder: Self.fixtures + "/mistral")
        let cache = model.makeCache(capacity: 16)
        let first = model.nextTokenLogits(ids: [5, 9, 13, 2, 7, 11], cache: cache)
        _ = model.nextTokenLogits(ids: [40, 41], cache: cache)
        cache.truncate(to: 5)
        // Position 5 again over the same 5 cached positions (one token takes the matvec path, so
        // equal to rounding, not bit for bit).
        let again = model.nextTokenLogits(ids: [11], cache: cache)
        XCTAssertEqual(again.count, first.count)
        for (x, y) in zip(again, first) { XCTAssertEqual(x, y, accuracy: 1e-5) }
    }
}
