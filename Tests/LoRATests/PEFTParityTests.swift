import Foundation
import Formats
import LoRA
import Architectures
import TensorCore
import TestSupport
import XCTest

/// LoRA against PEFT (scripts/fixtures/lora/make_peft_goldens.py): the same base, the same
/// adapter, the same batch must give PEFT's loss and every LoRA gradient.
final class PEFTParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let base = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures/llama").path

    struct Expected: Decodable { let ids: [[Int32]]; let masked_prefix: Int; let loss: Float }

    static func tensors(_ path: String) throws -> [String: Tensor] { try SafetensorsFile(path: path).tensors() }

    func testLossAndEveryLoRAGradientMatchPEFT() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/expected.json")))
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 1)
        let adapter = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 4, alpha: 8), rng: &rng)
        XCTAssertEqual(adapter.layers.count, 14, "all 7 linear kinds in both layers")
        try adapter.load(Self.tensors(Self.fixtures + "/adapter_model.safetensors"), source: "adapter_model.safetensors")

        let (b, t) = (expected.ids.count, expected.ids[0].count)
        let ids = IntTensor(shape: [b, t], scalars: expected.ids.flatMap { $0 })
        // Next-token targets; the prompt's labels and the last position are not trained on.
        var targets: [Int32] = []
        for row in expected.ids {
            for pos in 0..<t { targets.append(pos + 1 < t && pos + 1 >= expected.masked_prefix ? row[pos + 1] : -100) }
        }
        let c = model.config.hiddenSize
        let head = TensorStorage(count: model.config.vocabSize * c)
        model.embedding.decodeRows(0..<model.config.vocabSize, into: head.base)
        let hidden = model.hiddenStates(ids: ids, positions: .positions(batch: b, length: t))
        let loss = Tensor.linearCrossEntropy(hidden: hidden.reshaped([b * t, c]),
                                             weight: Tensor(shape: [model.config.vocabSize, c], storage: head),
                                             targets: IntTensor(shape: [b * t], scalars: targets))
        XCTAssertEqual(loss.item, expected.loss, accuracy: 1e-5 * expected.loss, "loss vs PEFT")

        let grads = loss.backward()
        let peft = try Self.tensors(Self.fixtures + "/gradients.safetensors")
        XCTAssertEqual(peft.count, 28)
        for (name, tensor) in adapter.parameters {
            let want = try XCTUnwrap(peft[name], name).scalars
            let got = try XCTUnwrap(grads[tensor], "no gradient for \(name)").scalars
            let scaleOfGradient = want.map(abs).max() ?? 0
            XCTAssertGreaterThan(scaleOfGradient, 0, "\(name): PEFT's gradient is zero; the test would prove nothing")
            assertClose(got, want, atol: 1e-4 * scaleOfGradient, rtol: 1e-4, name)
        }
        XCTAssertEqual(grads.tensors.count, 28, "only the adapters get gradients; the base is frozen")
    }

    func testAFreshAdapterLeavesTheModelUnchanged() throws {
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        let ids = IntTensor(shape: [1, 5], scalars: [1, 2, 3, 4, 5])
        let before = noGrad { model.logits(ids: ids, positions: .positions(batch: 1, length: 5)) }.scalars
        var rng = RandomGenerator(seed: 2)
        _ = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 8, alpha: 16, rsLoRA: true), rng: &rng)
        let after = noGrad { model.logits(ids: ids, positions: .positions(batch: 1, length: 5)) }.scalars
        XCTAssertEqual(before, after, "B starts at zero")
    }

    func testTargetsAndLayerSelection() {
        let qv = LoRAConfig(targets: .names(["q_proj", "v_proj"]), layers: [1])
        XCTAssertTrue(qv.targets("model.layers.1.self_attn.q_proj"))
        XCTAssertFalse(qv.targets("model.layers.0.self_attn.q_proj"))
        XCTAssertFalse(qv.targets("model.layers.1.self_attn.k_proj"))
        XCTAssertFalse(LoRAConfig().targets("lm_head"), "all-linear excludes the output head, as in PEFT")
        XCTAssertEqual(LoRAConfig(rank: 16, alpha: 32).scale, 2)
        XCTAssertEqual(LoRAConfig(rank: 16, alpha: 32, rsLoRA: true).scale, 8)
    }

    func testLoRALinearGradientsMatchFiniteDifferences() {
        let base = DenseLinear(weight: Fixtures.tensor([7, 5], seed: 1, requiresGrad: false))
        let layer = LoRALinear(base: base, a: Fixtures.tensor([3, 5], seed: 2), b: Fixtures.tensor([7, 3], seed: 3),
                               scale: 1.5, rng: RandomGenerator(seed: 4))
        assertGradientsMatch([Fixtures.tensor([2, 4, 5], seed: 5), layer.a, layer.b]) { inputs in layer.forward(inputs[0]) }
    }

    func testAdapterFromAnotherConfigurationIsRefusedByName() throws {
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 3)
        let adapter = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 8, alpha: 16), rng: &rng)
        XCTAssertThrowsError(try adapter.load(Self.tensors(Self.fixtures + "/adapter_model.safetensors"), source: "peft")) {
            XCTAssertTrue("\($0)".contains("lora_A.weight") && "\($0)".contains("shape"), "\($0)")
        }
        let qOnly = try LoRAAdapter(attachingTo: try DecoderModel(huggingFaceFolder: Self.base),
                                config: LoRAConfig(rank: 4, alpha: 8, targets: .names(["q_proj"])), rng: &rng)
        XCTAssertThrowsError(try qOnly.load(Self.tensors(Self.fixtures + "/adapter_model.safetensors"), source: "peft")) {
            XCTAssertTrue("\($0)".contains("matches no adapted module"), "\($0)")
        }
    }
}
