import Formats
import Foundation
import Decoding
import Architectures
import XCTest

/// 48 greedily decoded tokens from SmolLM2's GGUF, through the KV cache, equal transformers'
/// for the 4 golden chat prompts (Tests/ArchitecturesTests/Fixtures/smollm2-goldens.json).
final class GreedyParityTests: XCTestCase {
    struct Goldens: Decodable { struct Case: Decodable { let prompt: String; let ids: [Int32]; let greedy: [Int32] }; let cases: [Case] }

    func testFortyEightGreedyTokensMatchTransformers() throws {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let generator = Generator(model: try DecoderModel(ggufPath: path))
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ArchitecturesTests/Fixtures/smollm2-goldens.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        for c in goldens.cases {
            XCTAssertEqual(c.greedy.count, 48)
            let got = generator.generate(prompt: c.ids, maxTokens: 48)
            XCTAssertEqual(got.tokens, c.greedy, c.prompt)
            XCTAssertEqual(got.finish, .maxTokens)
        }
    }
}

/// 32 greedily decoded tokens of the real test bases, through the KV cache, equal
/// transformers' `generate` on the same GGUFs (scripts/fixtures/models/make_real_model_goldens.py),
/// up to near-ties. Gemma 3's long prompt decodes past its 512-token window: windowed layers
/// must keep reading only the last 512 cached positions.
///
/// Near-ties: f32 products differ in their last bits with the BLAS kernel the machine gets
/// (OpenBLAS takes its Haswell kernels on an AMD EPYC and its SkylakeX ones on the Intel
/// machine the goldens first matched on), and a decoded token's 8-bit activations can turn
/// such a difference into up to `KQuantGreedyParityTests.largestLogitChange`. So where the
/// tokens part, the reference's path is followed token by token instead: at every step its
/// token must be within `KQuantGreedyParityTests.nearTie` of the best logit here.
final class RealModelGreedyParityTests: XCTestCase {
    struct Goldens: Decodable { struct Case: Decodable { let prompt: String; let ids: [Int32]; let greedy: [Int32] }; let cases: [Case] }

    func assertGreedyMatches(_ path: String, goldens name: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("real test base missing at \(path): run scripts/setup.sh") }
        let model = try DecoderModel(ggufPath: path)
        let generator = Generator(model: model)
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ArchitecturesTests/Fixtures/\(name)")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(goldens.cases.count, 4)
        for c in goldens.cases {
            XCTAssertEqual(c.greedy.count, 32)
            let got = generator.generate(prompt: c.ids, maxTokens: 32)
            XCTAssertEqual(got.finish, .maxTokens)
            guard got.tokens != c.greedy else { continue }
            let cache = model.makeCache(capacity: c.ids.count + c.greedy.count)
            var logits = model.nextTokenLogits(ids: c.ids, cache: cache)  // [vocabulary]
            var largest = 0.0
            for (step, token) in c.greedy.enumerated() {
                let best = logits.max() ?? .nan, gap = Double(best) - Double(logits[Int(token)])
                XCTAssertLessThan(gap, KQuantGreedyParityTests.nearTie,
                                  "\(c.prompt.prefix(60)): step \(step), transformers' token \(token) is \(gap) below the best logit here")
                largest = max(largest, gap)
                logits = model.nextTokenLogits(ids: [token], cache: cache)
            }
            let parted = zip(got.tokens, c.greedy).prefix { $0 == $1 }.count
            print("\(c.prompt.prefix(40)): parted from transformers at step \(parted); along its tokens, at most \(largest) below the best logit")
        }
    }

    func testGemma3GreedyTokensMatchTransformers() throws {
        try assertGreedyMatches(CacheLocation.gemma3Model, goldens: "gemma3-270m-goldens.json")
    }

    func testQwenCoderGreedyTokensMatchTransformers() throws {
        try assertGreedyMatches(CacheLocation.qwenCoderModel, goldens: "qwen2.5-coder-0.5b-goldens.json")
    }
}
