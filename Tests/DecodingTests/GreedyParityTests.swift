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
