import Foundation
import Formats
import Architectures
import TensorCore
import TestSupport
import XCTest

/// Every architecture loaded from the GGUF that llama.cpp's own converter wrote from the tiny
/// transformers model (scripts/fixtures/models/make_tiny_ggufs.py): its logits must be
/// transformers' and the safetensors-loaded model's. This is what checks the per-architecture
/// GGUF layout — names, which families have Q/K rows permuted, Gemma's stored 1 + w norms,
/// Phi-3's fused tensors, Llama 3's `rope_freqs` — against the converter rather than against
/// Lorikeet's own reading of it.
final class GGUFArchitectureParityTests: XCTestCase {
    typealias Expected = ArchitectureParityTests.Expected

    func logits(_ model: DecoderModel, _ expected: Expected) -> Tensor {
        let (b, t) = (expected.ids.count, expected.ids[0].count)
        let ids = IntTensor(shape: [b, t], scalars: expected.ids.flatMap { $0 })
        return noGrad { model.logits(ids: ids, positions: .positions(batch: b, length: t)) }
    }

    @discardableResult
    func assertGGUFMatches(_ folderName: String, family: ModelConfig.Family,
                           file: StaticString = #filePath, line: UInt = #line) throws -> DecoderModel {
        let folder = ArchitectureParityTests.fixtures + "/" + folderName
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json")))
        let gguf = try DecoderModel(ggufPath: folder + "/model.gguf")
        XCTAssertEqual(gguf.config.family, family, file: file, line: line)
        let fromGGUF = logits(gguf, expected)
        XCTAssertEqual(fromGGUF.shape, expected.logits_shape, file: file, line: line)
        assertClose(fromGGUF.scalars, expected.logits, atol: 1e-4, rtol: 0, "\(folderName) GGUF logits vs transformers", file: file, line: line)
        let fromSafetensors = logits(try DecoderModel(huggingFaceFolder: folder), expected)
        assertClose(fromGGUF.scalars, fromSafetensors.scalars, atol: 1e-5, rtol: 0, "\(folderName) GGUF vs safetensors", file: file, line: line)
        return gguf
    }

    /// Llama 3 RoPE scaling arrives as llama.cpp's per-pair `rope_freqs` divisors.
    func testLlamaWithRopeFreqs() throws {
        let model = try assertGGUFMatches("llama", family: .llama)
        guard case .frequencyFactors(let factors) = model.config.ropeScaling else {
            return XCTFail("expected rope_freqs factors, got \(String(describing: model.config.ropeScaling))")
        }
        XCTAssertEqual(factors.count, model.config.headDim / 2)
        // A merged config.json needs the parameters back: those transformers was given.
        XCTAssertEqual(model.config.llama3ScalingReproducingFrequencyFactors,
                       .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 16))
        var other = model.config
        other.ropeScaling = .frequencyFactors(factors.map { $0 * 1.01 })
        XCTAssertNil(other.llama3ScalingReproducingFrequencyFactors, "divisors no Llama 3 parameters give are not guessed")
    }

    /// The converter writes Mistral as `llama`, Q/K rows permuted.
    func testMistral() throws { try assertGGUFMatches("mistral", family: .llama) }

    func testQwen2WithQKVBias() throws {
        XCTAssertTrue(try assertGGUFMatches("qwen2", family: .qwen2).config.attentionBias)
    }

    func testQwen3WithQKNorm() throws {
        XCTAssertTrue(try assertGGUFMatches("qwen3", family: .qwen3).config.qkNorm)
    }

    func testGemma() throws { try assertGGUFMatches("gemma", family: .gemma) }

    func testGemma2() throws {
        let config = try assertGGUFMatches("gemma2", family: .gemma2).config
        XCTAssertEqual([config.window(ofLayer: 0), config.window(ofLayer: 1)], [4, nil])
        XCTAssertEqual(config.attentionSoftcap, 3)
        XCTAssertEqual(config.finalLogitSoftcap, 5)
    }

    /// Gemma 3 as the converter writes it: every norm (q/k norms too) stored as 1 + w, the
    /// window without a pattern key (llama.cpp's period 6), the local base as rope.freq_base_swa.
    func testGemma3() throws {
        let config = try assertGGUFMatches("gemma3", family: .gemma3).config
        XCTAssertEqual((0..<6).map { config.window(ofLayer: $0) }, [4, 4, 4, 4, 4, nil])
        XCTAssertEqual(config.slidingRopeTheta, 100)
        XCTAssertEqual(config.ropeScaling, .linear(factor: 8))
    }

    func testPhi3WithFusedProjections() throws {
        let model = try assertGGUFMatches("phi3", family: .phi3)
        XCTAssertEqual(model.namedLinears.map(\.name).filter { $0.hasPrefix("model.layers.0.") },
                       ["model.layers.0.mlp.down_proj", "model.layers.0.mlp.gate_up_proj",
                        "model.layers.0.self_attn.o_proj", "model.layers.0.self_attn.qkv_proj"])
    }

    // MARK: - Metadata the tiny fixtures cannot show

    /// A metadata-only GGUF of `arch` with `extra` keys, read back as a configuration.
    func config(_ arch: String, layers: Int, _ extra: [(String, GGUFValue)] = []) throws -> ModelConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(arch)-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)), ("\(arch).vocab_size", .uint32(16)),
            ("\(arch).embedding_length", .uint32(4608)), ("\(arch).block_count", .uint32(UInt32(layers))),
            ("\(arch).feed_forward_length", .uint32(64)), ("\(arch).attention.head_count", .uint32(32)),
            ("\(arch).attention.head_count_kv", .uint32(16)), ("\(arch).attention.key_length", .uint32(128)),
        ] + extra
        try GGUFFile.write(metadata: metadata, tensors: [], to: path)
        return try ModelConfig(gguf: try GGUFFile(path: path))
    }

    /// GGUF has no query_pre_attn_scalar: like llama.cpp, key_length^-½, except Gemma 2 27B
    /// (46 layers) whose scalar is hidden / heads = 144.
    func testGemma2AttentionScaleFollowsLlamaCpp() throws {
        XCTAssertEqual(try config("gemma2", layers: 42).attentionScale, 1 / Float(128).squareRoot(), accuracy: 1e-7)
        XCTAssertEqual(try config("gemma2", layers: 46).attentionScale, 1 / Float(144).squareRoot(), accuracy: 1e-7)
    }

    /// Gemma 2 windows: 4096 and every even layer unless the file says otherwise.
    func testGemma2WindowDefaultsAndPattern() throws {
        let plain = try config("gemma2", layers: 4)
        XCTAssertEqual((0..<4).map { plain.window(ofLayer: $0) }, [4096, nil, 4096, nil])
        let period3 = try config("gemma2", layers: 4, [("gemma2.attention.sliding_window", .uint32(8)),
                                                      ("gemma2.attention.sliding_window_pattern", .uint32(3))])
        XCTAssertEqual((0..<4).map { period3.window(ofLayer: $0) }, [8, 8, nil, 8])
    }

    /// Gemma 3 as llama.cpp reads it: period 6 (layers 5, 11, 17 global), local base 10 000
    /// unless rope.freq_base_swa says otherwise, no window key → every layer global,
    /// key_length^-½ except the 27B (62 layers: hidden / heads).
    func testGemma3WindowsRopeBasesAndAttentionScale() throws {
        let window: [(String, GGUFValue)] = [("gemma3.attention.sliding_window", .uint32(512))]
        let small = try config("gemma3", layers: 18, window)
        XCTAssertEqual((0..<18).filter { small.window(ofLayer: $0) == nil }, [5, 11, 17])
        XCTAssertEqual(small.window(ofLayer: 0), 512)
        XCTAssertEqual(small.slidingRopeTheta, 10_000)
        XCTAssertEqual(small.rotaryEmbedding(ofLayer: 0), RotaryEmbedding(rotaryDim: 128, base: 10_000))
        XCTAssertEqual(small.rotaryEmbedding(ofLayer: 5), small.rotaryEmbedding)
        XCTAssertEqual(small.attentionScale, 1 / Float(128).squareRoot(), accuracy: 1e-7)
        XCTAssertEqual(try config("gemma3", layers: 62, window).attentionScale, 1 / Float(144).squareRoot(), accuracy: 1e-7)
        let global = try config("gemma3", layers: 4)
        XCTAssertEqual((0..<4).map { global.window(ofLayer: $0) }, [nil, nil, nil, nil])
        let listed = try config("gemma3", layers: 3, window + [("gemma3.rope.freq_base_swa", .float32(500)),
                                                               ("gemma3.attention.sliding_window_pattern", .array([.bool(false), .bool(true), .bool(false)]))])
        XCTAssertEqual((0..<3).map { listed.window(ofLayer: $0) }, [nil, 512, nil])
        XCTAssertEqual(listed.slidingRopeTheta, 500)
    }

    /// Phi-3's window: 0 means none; a positive one applies to every layer, as in transformers.
    func testPhi3Window() throws {
        XCTAssertNil(try config("phi3", layers: 2, [("phi3.attention.sliding_window", .uint32(0))]).window(ofLayer: 0))
        let windowed = try config("phi3", layers: 2, [("phi3.attention.sliding_window", .uint32(2047))])
        XCTAssertEqual([windowed.window(ofLayer: 0), windowed.window(ofLayer: 1)], [2047, 2047])
    }

    /// The tiny fixtures give Mistral no window and Gemma 2 query_pre_attn_scalar = head_dim so
    /// that they round-trip through GGUF; the Hugging Face path must still honour both.
    func testHuggingFaceConfigKeepsWhatGGUFCannotCarry() throws {
        func hf(_ json: String) throws -> ModelConfig {
            try ModelConfig(huggingFace: try JSONValue(data: Data(json.utf8), path: "config.json"), path: "config.json")
        }
        let sizes = #""vocab_size":16,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":48,"head_dim":8"#
        let mistral = try hf(#"{"model_type":"mistral","sliding_window":4,"# + sizes + "}")
        XCTAssertEqual([mistral.window(ofLayer: 0), mistral.window(ofLayer: 1)], [4, 4])
        let gemma2 = try hf(#"{"model_type":"gemma2","query_pre_attn_scalar":12,"# + sizes + "}")
        XCTAssertEqual(gemma2.attentionScale, 1 / Float(12).squareRoot(), accuracy: 1e-7)
    }

    /// Gemma 3 configs as transformers 4.5x wrote them (rope_local_base_freq,
    /// sliding_window_pattern, rope_scaling for the global layers); the multimodal wrapper is
    /// refused by name.
    func testGemma3HuggingFaceConfigSpellings() throws {
        func hf(_ json: String) throws -> ModelConfig {
            try ModelConfig(huggingFace: try JSONValue(data: Data(json.utf8), path: "config.json"), path: "config.json")
        }
        let sizes = #""vocab_size":16,"hidden_size":32,"num_hidden_layers":7,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":48,"head_dim":8"#
        let old = try hf(#"{"model_type":"gemma3_text","sliding_window":16,"sliding_window_pattern":6,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,"rope_scaling":{"rope_type":"linear","factor":8.0},"query_pre_attn_scalar":8,"# + sizes + "}")
        XCTAssertEqual(old.family, .gemma3)
        XCTAssertEqual((0..<7).map { old.window(ofLayer: $0) }, [16, 16, 16, 16, 16, nil, 16])
        XCTAssertEqual(old.slidingRopeTheta, 10_000)
        XCTAssertEqual(old.ropeTheta, 1_000_000)
        XCTAssertEqual(old.ropeScaling, .linear(factor: 8))
        XCTAssertTrue(old.qkNorm && old.sandwichNorms && old.scaleEmbeddings && old.normWeightOffset == 1 && old.activation == .geluTanh)
        XCTAssertThrowsError(try hf(#"{"model_type":"gemma3","text_config":{},"vision_config":{},"# + sizes + "}")) { error in
            XCTAssertTrue("\(error)".contains("multimodal"), "\(error)")
        }
    }
}
