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

    /// Gemma 3: five windowed layers (window 4 over 7 tokens) with their own RoPE base (100),
    /// a global sixth with base 1e6 and linear scaling 8, QK-norm, four norms per layer.
    func testGemma3WithLocalAndGlobalLayers() throws {
        try assertMatchesTransformers("gemma3")
        let config = try DecoderModel(huggingFaceFolder: Self.fixtures + "/gemma3").config
        XCTAssertEqual((0..<6).map { config.window(ofLayer: $0) }, [4, 4, 4, 4, 4, nil])
        XCTAssertEqual(config.slidingRopeTheta, 100)
        XCTAssertEqual(config.ropeScaling, .linear(factor: 8))
        XCTAssertTrue(config.qkNorm && config.sandwichNorms)
    }

    /// The fixture is sensitive to each Gemma 3 variation: dropping one moves the logits far
    /// beyond the parity tolerance (so the parity test above can fail).
    func testGemma3FixtureSeesEachVariation() throws {
        let folder = Self.fixtures + "/gemma3"
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
        let right = try DecoderModel(huggingFaceFolder: folder).config
        var noLocalBase = right; noLocalBase.slidingRopeTheta = nil
        var noWindows = right; noWindows.windowPattern = .none
        var noScaling = right; noScaling.ropeScaling = nil
        var everyLayerWindowed = right; everyLayerWindowed.windowPattern = .all
        for (name, config) in [("local RoPE base", noLocalBase), ("windows", noWindows), ("global scaling", noScaling),
                               ("a global layer", everyLayerWindowed)] {
            let model = try DecoderModel(config: config, weights: SafetensorsWeightSource(folder: SafetensorsFolder(path: folder)))
            let (b, t) = (expected.ids.count, expected.ids[0].count)
            let logits = noGrad { model.logits(ids: IntTensor(shape: [b, t], scalars: expected.ids.flatMap { $0 }), positions: .positions(batch: b, length: t)) }
            let worst = zip(logits.scalars, expected.logits).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(worst, 1e-2, "without \(name) the logits should differ")
        }
    }

    /// Training packs sequences into one row: each keeps its own positions, its own window
    /// and its own local/global RoPE, so the packed row's logits are transformers' logits of
    /// each sequence alone.
    func testGemma3PackedRowKeepsEachSequenceWindowed() throws {
        let folder = Self.fixtures + "/gemma3"
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
        let model = try DecoderModel(huggingFaceFolder: folder)
        let (b, t) = (expected.ids.count, expected.ids[0].count)
        let ids = IntTensor(shape: [1, b * t], scalars: expected.ids.flatMap { $0 })
        let positions = IntTensor(shape: [1, b * t], scalars: (0..<b).flatMap { _ in (0..<Int32(t)).map { $0 } })
        let segments = IntTensor(shape: [1, b * t], scalars: (0..<b).flatMap { s in [Int32](repeating: Int32(s), count: t) })
        let logits = noGrad { model.logits(ids: ids, positions: positions, segments: segments) }
        assertClose(logits.scalars, expected.logits, atol: 1e-4, rtol: 0, "packed gemma3 row vs transformers per sequence")
    }
}
