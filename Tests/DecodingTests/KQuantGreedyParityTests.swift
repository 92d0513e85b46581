import Architectures
import Decoding
import Formats
import Foundation
import XCTest

/// Qwen2.5-Coder-0.5B-Instruct Q4_K_M decoded greedily through the KV cache, its Q5_0, Q4_K,
/// Q6_K and Q8_0 projections read by the C block kernels (panel decode for the prompt, fused
/// matrix-vector products for each new token): the tokens equal transformers' on the same file
/// dequantized by the `gguf` package (scripts/fixtures/models/make_qwen_coder_greedy.py).
final class KQuantGreedyParityTests: XCTestCase {
    struct Goldens: Decodable {
        struct Case: Decodable { let prompt: String; let ids: [Int32]; let greedy: [Int32]; let top2_gap: [Double] }
        let model: String
        let cases: [Case]
    }

    func testQwenCoderGreedyTokensMatchTransformers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/qwen2.5-coder-greedy.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        let path = CacheLocation.models + "/" + goldens.model
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(goldens.model) missing: run scripts/setup.sh") }
        let model = try DecoderModel(ggufPath: path)
        let generator = Generator(model: model)
        for c in goldens.cases {
            let got = generator.generate(prompt: c.ids, maxTokens: c.greedy.count)
            // On a mismatch, say how close transformers' top two logits were at that step.
            let first = zip(got.tokens, c.greedy).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            XCTAssertEqual(got.tokens, c.greedy,
                           "\(c.prompt): first difference at step \(first ?? -1), top-2 logit gap there \(first.map { c.top2_gap[$0] } ?? 0)")
        }
    }
}
