import Architectures
import Decoding
import Formats
import Foundation
import XCTest

/// Qwen2.5-Coder-0.5B-Instruct Q4_K_M decoded greedily through the KV cache, its Q5_0, Q4_K,
/// Q6_K and Q8_0 projections read by the C block kernels (panel decode for the prompt, fused
/// matrix-vector products over 8-bit activations for each new token): the tokens equal
/// transformers' on the same file dequantized by the `gguf` package
/// (scripts/fixtures/models/make_qwen_coder_greedy.py), or, from a near-tie of transformers'
/// logits on, llama.cpp's (scripts/fixtures/models/add_llamacpp_greedy.py).
final class KQuantGreedyParityTests: XCTestCase {
    struct Goldens: Decodable {
        struct Case: Decodable {
            let prompt: String, ids: [Int32], greedy: [Int32], top2_gap: [Double]
            let llamacpp_greedy: [Int32]  // scripts/fixtures/models/add_llamacpp_greedy.py
        }
        let model: String
        let cases: [Case]
    }

    /// How far any logit may move between the 8-bit and the f32 products (measured: 0.175 and
    /// 0.159 over the 151,936 logits of the two prompts; a wrong block or scale moves them by whole units).
    static let largestLogitChange = 0.2
    /// A gap between two logits that rounding activations can close: each may move by
    /// `largestLogitChange`.
    static let nearTie = 2 * largestLogitChange

    /// The fixture and the GGUF it was made from (skipped when that file is not cached).
    static func goldensAndModel() throws -> (Goldens, DecoderModel) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/qwen2.5-coder-greedy.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        let path = CacheLocation.models + "/" + goldens.model
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(goldens.model) missing: run scripts/setup.sh") }
        return (goldens, try DecoderModel(ggufPath: path))
    }

    func testQwenCoderGreedyTokensMatchTransformers() throws {
        let (goldens, model) = try Self.goldensAndModel()
        let generator = Generator(model: model)
        for c in goldens.cases {
            let got = generator.generate(prompt: c.ids, maxTokens: c.greedy.count)
            guard let first = zip(got.tokens, c.greedy).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else {
                XCTAssertEqual(got.tokens, c.greedy, c.prompt)
                continue
            }
            // The Q5_0/Q4_K/Q6_K products round x to 8 bits, as llama.cpp's do; transformers
            // computes in f32. Where its two best logits were within `nearTie` the two may part,
            // and the tokens must then be llama.cpp's, all of them.
            XCTAssertLessThan(c.top2_gap[first], Self.nearTie,
                              "\(c.prompt): first difference from transformers at step \(first), where its top-2 logit gap is \(c.top2_gap[first])")
            XCTAssertEqual(got.tokens, c.llamacpp_greedy, "\(c.prompt): parted from transformers at step \(first), and differs from llama.cpp")
        }
    }

    /// A prompt's last token decoded alone (the 8-bit products) against the same position in a
    /// prefill of the whole prompt (f32 panels): every logit within `largestLogitChange`, the top
    /// token the same.
    func testEightBitDecodeStaysNearTheF32Products() throws {
        let (goldens, model) = try Self.goldensAndModel()
        for c in goldens.cases {
            let whole = model.nextTokenLogits(ids: c.ids, cache: model.makeCache(capacity: c.ids.count))
            let split = model.makeCache(capacity: c.ids.count)
            _ = model.nextTokenLogits(ids: Array(c.ids.dropLast()), cache: split)
            let alone = model.nextTokenLogits(ids: [c.ids[c.ids.count - 1]], cache: split)
            let moved = zip(whole, alone).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
            XCTAssertLessThan(moved, Self.largestLogitChange, c.prompt)
            XCTAssertGreaterThan(moved, 0, "\(c.prompt): the 8-bit path should not give the f32 bits")
            XCTAssertEqual(whole.indices.max { whole[$0] < whole[$1] }, alone.indices.max { alone[$0] < alone[$1] }, c.prompt)
        }
    }
}
