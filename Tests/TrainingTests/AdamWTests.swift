import Foundation
import Formats
import LoRA
import Architectures
import TensorCore
import TestSupport
import Training
import XCTest

/// 20 AdamW steps from PEFT's adapter on PEFT's batch (make_peft_goldens.py): the loss at
/// every step and the final adapter must match PyTorch's AdamW.
final class AdamWTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LoRATests/Fixtures").path
    static let base = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures/llama").path

    struct Settings: Decodable { let lr: Float; let betas: [Float]; let eps: Float; let weight_decay: Float; let losses: [Float] }
    struct Batch: Decodable { let ids: [[Int32]]; let masked_prefix: Int }

    static func tensors(_ path: String) throws -> [String: Tensor] { try SafetensorsFile(path: path).tensors() }

    func testTwentyStepsMatchPyTorch() throws {
        let settings = try JSONDecoder().decode(Settings.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/adamw.json")))
        let batch = try JSONDecoder().decode(Batch.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/expected.json")))
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 1)
        let adapter = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 4, alpha: 8), rng: &rng)
        try adapter.load(Self.tensors(Self.fixtures + "/adapter_model.safetensors"), source: "adapter")

        let (b, t, c, v) = (batch.ids.count, batch.ids[0].count, model.config.hiddenSize, model.config.vocabSize)
        let ids = IntTensor(shape: [b, t], scalars: batch.ids.flatMap { $0 })
        let targets = IntTensor(shape: [b * t], scalars: batch.ids.flatMap { row in
            (0..<t).map { pos in pos + 1 < t && pos + 1 >= batch.masked_prefix ? row[pos + 1] : -100 }
        })
        let head = TensorStorage(count: v * c)
        model.embedding.decodeRows(0..<v, into: head.base)
        let headWeight = Tensor(shape: [v, c], storage: head)

        var optimizer = AdamW(learningRate: settings.lr, beta1: settings.betas[0], beta2: settings.betas[1],
                              epsilon: settings.eps, weightDecay: settings.weight_decay)
        for (step, want) in settings.losses.enumerated() {
            let hidden = model.hiddenStates(ids: ids, positions: .positions(batch: b, length: t)).reshaped([b * t, c])
            let loss = Tensor.linearCrossEntropy(hidden: hidden, weight: headWeight, targets: targets)
            XCTAssertEqual(loss.item, want, accuracy: 1e-4 * max(1, want), "loss at step \(step)")
            optimizer.update(adapter.parameters, gradients: loss.backward())
        }
        XCTAssertEqual(optimizer.step, 20)
        let trained = try Self.tensors(Self.fixtures + "/after_20_adamw_steps.safetensors")
        for (name, tensor) in adapter.parameters {
            let want = try XCTUnwrap(trained[name], name).scalars
            assertClose(tensor.scalars, want, atol: 1e-4 * (want.map(abs).max() ?? 1), rtol: 1e-4, name)
        }
    }

    func testWeightDecayIsDecoupledAndBiasCorrected() {
        // One step with gradient g: Adam's first step moves by lr·sign(g) (bias-corrected), and
        // decay multiplies the weight by (1 − lr·wd) regardless of the gradient.
        let w = Tensor(shape: [2], scalars: [1, -2], requiresGrad: true)
        let grads = (w * Tensor(shape: [2], scalars: [3, 0])).sum().backward()
        var adam = AdamW(learningRate: 0.1, weightDecay: 0.5)
        adam.update([("w", w)], gradients: grads)
        XCTAssertEqual(w.scalars[0], 1 * (1 - 0.05) - 0.1, accuracy: 1e-6)
        XCTAssertEqual(w.scalars[1], -2 * (1 - 0.05), accuracy: 1e-6, "zero gradient: decay only")
    }
}
