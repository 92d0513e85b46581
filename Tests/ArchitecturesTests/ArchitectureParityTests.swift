import Foundation
import Formats
import Architectures
import TensorCore
import TestSupport
import XCTest

/// Lorikeet's decoder against transformers on tiny random-weight models of every supported
/// architecture (written, with their logits, by scripts/fixtures/models/make_tiny_models.py).
final class ArchitectureParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    struct Expected: Decodable {
        let ids: [[Int32]]
        let logits_shape: [Int]
        let logits: [Float]
    }

    func assertMatchesTransformers(_ family: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = Self.fixtures + "/" + family
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
        let model = try DecoderModel(huggingFaceFolder: folder)
        XCTAssertEqual(model.config.family.rawValue, family, file: file, line: line)
        let (b, t) = (expected.ids.count, expected.ids[0].count)
        let ids = IntTensor(shape: [b, t], scalars: expected.ids.flatMap { $0 })
        let logits = noGrad { model.logits(ids: ids, positions: .positions(batch: b, length: t)) }
        XCTAssertEqual(logits.shape, expected.logits_shape, file: file, line: line)
        assertClose(logits.scalars, expected.logits, atol: 1e-4, rtol: 0, "\(family) logits vs transformers", file: file, line: line)
    }

    func testLlamaWithLlama3RopeScaling() throws { try assertMatchesTransformers("llama") }
    func testMistralWithSlidingWindow() throws { try assertMatchesTransformers("mistral") }
    func testQwen2WithQKVBias() throws { try assertMatchesTransformers("qwen2") }
    func testQwen3WithQKNorm() throws { try assertMatchesTransformers("qwen3") }
    func testGemma() throws { try assertMatchesTransformers("gemma") }
    func testGemma2WithSoftcapsSandwichNormsAndAlternatingWindows() throws { try assertMatchesTransformers("gemma2") }
    func testPhi3WithFusedProjections() throws { try assertMatchesTransformers("phi3") }
}
