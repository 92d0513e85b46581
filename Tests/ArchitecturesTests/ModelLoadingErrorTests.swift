import Foundation
import Formats
import Architectures
import TensorCore
import TestSupport
import XCTest

/// A model that does not fit its configuration is refused with the tensor's name.
final class ModelLoadingErrorTests: XCTestCase {
    func config(_ family: ModelConfig.Family = .llama) -> ModelConfig {
        ModelConfig(family: family, vocabSize: 10, hiddenSize: 8, layerCount: 1, headCount: 2, kvHeadCount: 1,
                    intermediateSize: 12, rmsNormEps: 1e-5, ropeTheta: 10_000, maxPositions: 32, tieWordEmbeddings: true)
    }

    func weights(dropping: String? = nil, reshaping: String? = nil) -> [String: Tensor] {
        var w: [String: Tensor] = [:]
        func add(_ name: String, _ shape: [Int]) { w[name] = Fixtures.tensor(shape, seed: UInt64(w.count), requiresGrad: false) }
        add("model.embed_tokens.weight", [10, 8]); add("model.norm.weight", [8])
        add("model.layers.0.input_layernorm.weight", [8]); add("model.layers.0.post_attention_layernorm.weight", [8])
        add("model.layers.0.self_attn.q_proj.weight", [8, 8]); add("model.layers.0.self_attn.k_proj.weight", [4, 8])
        add("model.layers.0.self_attn.v_proj.weight", [4, 8]); add("model.layers.0.self_attn.o_proj.weight", [8, 8])
        add("model.layers.0.mlp.gate_proj.weight", [12, 8]); add("model.layers.0.mlp.up_proj.weight", [12, 8])
        add("model.layers.0.mlp.down_proj.weight", [8, 12])
        if let dropping { w[dropping] = nil }
        if let reshaping { w[reshaping] = Fixtures.tensor([3, 8], seed: 99, requiresGrad: false) }
        return w
    }

    func testCompleteWeightsLoad() throws {
        let model = try DecoderModel(config: config(), weights: TensorWeightSource(weights()))
        XCTAssertEqual(model.namedLinears.count, 7)
        XCTAssertEqual(model.namedLinears.first?.name, "model.layers.0.mlp.down_proj")
    }

    func testMissingTensorIsNamed() {
        XCTAssertThrowsError(try DecoderModel(config: config(), weights: TensorWeightSource(weights(dropping: "model.layers.0.mlp.up_proj.weight")))) {
            XCTAssertEqual($0 as? ModelError, .missingTensor("model.layers.0.mlp.up_proj.weight", source: "in-memory weights"))
        }
    }

    func testWrongShapeIsNamed() {
        XCTAssertThrowsError(try DecoderModel(config: config(), weights: TensorWeightSource(weights(reshaping: "model.layers.0.self_attn.k_proj.weight")))) {
            XCTAssertEqual($0 as? ModelError, .shapeMismatch(tensor: "model.layers.0.self_attn.k_proj.weight", expected: [4, 8], found: [3, 8], source: "in-memory weights"))
        }
    }

    func testInvalidConfigIsRefused() {
        var c = config()
        c.kvHeadCount = 3
        XCTAssertThrowsError(try DecoderModel(config: c, weights: TensorWeightSource(weights()))) {
            XCTAssertTrue("\($0)".contains("not a multiple"), "\($0)")
        }
    }

    func testUnsupportedArchitectureAndRopeAreNamed() throws {
        let falcon = try JSONValue(data: Data(#"{"model_type":"falcon"}"#.utf8), path: "config.json")
        XCTAssertThrowsError(try ModelConfig(huggingFace: falcon, path: "config.json")) {
            XCTAssertTrue("\($0)".contains("unsupported architecture 'falcon'"), "\($0)")
        }
        let yarn = try JSONValue(data: Data(#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":4,"rope_scaling":{"rope_type":"yarn","factor":4}}"#.utf8), path: "config.json")
        XCTAssertThrowsError(try ModelConfig(huggingFace: yarn, path: "config.json")) {
            XCTAssertTrue("\($0)".contains("'yarn' is not supported"), "\($0)")
        }
    }
}

final class GGUFArchitectureTests: XCTestCase {
    /// llama.cpp's falcon vocabulary file declares general.architecture = falcon.
    func testUnsupportedGGUFArchitectureIsNamed() throws {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-falcon.gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        XCTAssertThrowsError(try DecoderModel(ggufPath: path)) { error in
            guard case .unsupportedArchitecture(let name, _)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "falcon")
        }
    }
}
