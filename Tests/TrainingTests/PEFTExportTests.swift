import Formats
import Foundation
import LoRA
import Architectures
import TensorCore
@testable import Training
@testable import Export
import XCTest

/// A checkpoint exported as a PEFT folder carries PEFT's names and config, and loading that
/// folder back onto the base reproduces the trained model's logits.
final class PEFTExportTests: XCTestCase {
    func testExportedFolderLoadsBackToTheSameModel() throws {
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(["quantization.base=f32", "lora.dropout=0", "training.grad_accumulation=1"]))
        for _ in 0..<3 { _ = try trainer.trainStep() }
        let archive = trainer.checkpoint(base: BaseIdentity(name: "tiny-llama", path: "", sha256: "-", license: "apache-2.0"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-peft-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try PEFTExport(checkpoint: archive, source: "test").write(to: folder)

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/adapter_config.json"))) as? [String: Any])
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["r"] as? Int, 4)
        XCTAssertEqual(json["target_modules"] as? [String], ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        XCTAssertEqual(json["base_model_name_or_path"] as? String, "tiny-llama")
        let file = try SafetensorsFile(path: folder + "/adapter_model.safetensors")
        let saved = file.tensors()
        XCTAssertEqual(Set(saved.keys), Set(trainer.adapter.parameters.map(\.name)))
        for (name, tensor) in trainer.adapter.parameters {
            XCTAssertEqual(saved[name]?.shape, tensor.shape, name)
            XCTAssertEqual(saved[name]?.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), name)
        }
        XCTAssertTrue(try String(contentsOfFile: folder + "/README.md", encoding: .utf8).contains("license: apache-2.0"))

        let config = try PEFTAdapterConfig(folder: folder)
        XCTAssertEqual(config.lora.rank, 4)
        XCTAssertEqual(config.lora.scale, trainer.recipe.lora.config.scale)
        let model = try DecoderModel(huggingFaceFolder: TrainingLoopTests.base)
        var rng = RandomGenerator(seed: 99)
        let loaded = try LoRAAdapter(attachingTo: model, config: config.lora, rng: &rng)
        try loaded.load(saved, source: folder)
        loaded.setTraining(false)
        trainer.adapter.setTraining(false)
        let ids = IntTensor(shape: [1, 7], scalars: [3, 14, 15, 92, 65, 35, 89]), positions = IntTensor.positions(batch: 1, length: 7)
        let ours = noGrad { trainer.model.logits(ids: ids, positions: positions) }.scalars
        let reloaded = noGrad { model.logits(ids: ids, positions: positions) }.scalars
        for (x, y) in zip(ours, reloaded) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        let base = noGrad { try? DecoderModel(huggingFaceFolder: TrainingLoopTests.base).logits(ids: ids, positions: positions) }?.scalars ?? []
        XCTAssertGreaterThan(zip(base, ours).map { abs($0 - $1) }.max() ?? 0, 1e-3, "the adapter must have changed the model for this to mean anything")
    }

    func testPiSSAAdaptersAreNotExportedAsPlainLoRA() throws {
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(["lora.init=pissa"]))
        let archive = trainer.checkpoint(base: BaseIdentity(name: "", path: "", sha256: "", license: ""))
        XCTAssertThrowsError(try PEFTExport(checkpoint: archive, source: "ckpt")) { XCTAssertTrue("\($0)".contains("pissa"), "\($0)") }
    }

    func testMalformedAdapterConfigsAreNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-peftbad-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (text, expected) in [("{", "not a JSON object"), (#"{"r": 8, "target_modules": ["q_proj"], "use_dora": true}"#, "DoRA"),
                                 (#"{"r": 0, "target_modules": ["q_proj"]}"#, "'r'"), (#"{"r": 8, "target_modules": 3}"#, "target_modules")] {
            try text.write(toFile: folder + "/adapter_config.json", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try PEFTAdapterConfig(folder: folder)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
    }
}
