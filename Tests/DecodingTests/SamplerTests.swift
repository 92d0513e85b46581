import Foundation
import Decoding
import TensorCore
import XCTest

/// Samplers against transformers' logits processors (scripts/fixtures/generation/
/// make_sampler_goldens.py), and draws that follow the processed distribution.
final class SamplerTests: XCTestCase {
    struct Goldens: Decodable {
        struct Settings: Decodable { let temperature: Float; let top_k: Int; let top_p: Float; let min_p: Float; let repetition_penalty: Float }
        struct Case: Decodable { let settings: Settings; let logits: [Float]; let history: [Int32]; let scores: [Float?] }
        let cases: [Case]
    }

    static func options(_ s: Goldens.Settings, seed: UInt64 = 0) -> SamplingOptions {
        SamplingOptions(temperature: s.temperature, topK: s.top_k, topP: s.top_p, minP: s.min_p, repetitionPenalty: s.repetition_penalty, seed: seed)
    }

    static func goldens() throws -> Goldens {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sampler-goldens.json")
        return try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: path))
    }

    func testProcessedScoresEqualTransformers() throws {
        let goldens = try Self.goldens()
        XCTAssertEqual(goldens.cases.count, 18)
        var removedSomewhere = 0
        for (n, c) in goldens.cases.enumerated() {
            let ours = Sampler(Self.options(c.settings)).scores(logits: c.logits, history: c.history)
            XCTAssertEqual(ours.count, c.scores.count)
            for (i, (x, expected)) in zip(ours, c.scores).enumerated() {
                if let expected {
                    XCTAssertEqual(x, expected, accuracy: 1e-5 * max(1, abs(expected)), "case \(n) token \(i)")
                } else {
                    XCTAssertEqual(x, -.infinity, "case \(n) token \(i) should be removed")
                    removedSomewhere += 1
                }
            }
        }
        XCTAssertGreaterThan(removedSomewhere, 50, "the cases must exercise the filters")
    }

    func testDrawsFollowTheProcessedDistribution() throws {
        let c = try Self.goldens().cases[13]  // top-k 20, top-p 0.95, min-p 0.05, penalty 1.1, temperature 0.8
        var sampler = Sampler(Self.options(c.settings, seed: 42))
        let scores = sampler.scores(logits: c.logits, history: c.history)
        let m = scores.max() ?? 0
        let weights = scores.map { Foundation.exp(Double($0 - m)) }
        let total = weights.reduce(0, +)
        let draws = 20_000
        var counts = [Int](repeating: 0, count: scores.count)
        for _ in 0..<draws { counts[Int(sampler.next(logits: c.logits, history: c.history))] += 1 }
        for (i, w) in weights.enumerated() {
            let p = w / total, frequency = Double(counts[i]) / Double(draws)
            if p == 0 { XCTAssertEqual(counts[i], 0, "a removed token was drawn") }
            XCTAssertEqual(frequency, p, accuracy: 5 * (p * (1 - p) / Double(draws)).squareRoot() + 1e-3, "token \(i)")
        }
    }

    func testSeedsReproduceAndGreedyIsTheArgmax() throws {
        let c = try Self.goldens().cases[2]
        func run(_ seed: UInt64) -> [Int32] {
            var s = Sampler(SamplingOptions(temperature: 1, seed: seed))
            return (0..<50).map { _ in s.next(logits: c.logits, history: []) }
        }
        XCTAssertEqual(run(7), run(7))
        XCTAssertNotEqual(run(7), run(8))
        var greedy = Sampler(SamplingOptions(temperature: 0))
        XCTAssertEqual(Int(greedy.next(logits: c.logits, history: [])), c.logits.indices.max { c.logits[$0] < c.logits[$1] })
    }

    func testBadSettingsAreNamed() {
        XCTAssertNotNil(SamplingOptions(temperature: -1).problem)
        XCTAssertNotNil(SamplingOptions(topP: 0).problem)
        XCTAssertNotNil(SamplingOptions(minP: 1).problem)
        XCTAssertNotNil(SamplingOptions(repetitionPenalty: 0).problem)
        XCTAssertNil(SamplingOptions(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1).problem)
    }
}
