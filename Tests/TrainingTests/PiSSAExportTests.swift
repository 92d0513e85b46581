import Formats
import Foundation
import LoRA
import Architectures
import Quantization
import TensorCore
import TestSupport
@testable import Training
@testable import Export
import XCTest

/// PiSSA and LoftQ adapters exported for the original base: the rank-2r LoRA [A; A0], [B, −B0]
/// whose scale equals the trained one. Goldens: PEFT's own conversion
/// (`save_pretrained(path_initial_model_for_weight_conversion=…)`) of a PiSSA adapter PEFT
/// trained, from scripts/fixtures/lora/make_pissa_conversion_goldens.py (peft 0.21.2).
final class PiSSAExportTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pissa-converted").path
    static let ids = IntTensor(shape: [2, 8], scalars: [1, 17, 42, 5, 88, 3, 60, 9, 95, 0, 12, 12, 33, 71, 2, 40])

    static func logits(_ model: DecoderModel) -> Tensor { noGrad { model.logits(ids: ids, positions: .positions(batch: 2, length: 8)) } }

    /// The original tiny Llama with `adapter` attached unmerged, as a PEFT folder would be.
    static func logits(original adapter: PlainLoRAAdapter) throws -> Tensor {
        let model = try DecoderModel(huggingFaceFolder: TrainingLoopTests.base)
        var rng = RandomGenerator(seed: 0)
        let attached = try LoRAAdapter(attachingTo: model, config: adapter.lora, rng: &rng)
        try attached.load(adapter.tensors, source: "converted")
        attached.setTraining(false)
        return logits(model)
    }

    static func maxDifference(_ a: Tensor, _ b: Tensor) -> Float { zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity }

    /// A checkpoint of a PiSSA run (r=4, alpha=8, all-linear, f32 base) holding `tensors`.
    static func checkpoint(_ tensors: [String: Tensor], settings: [String]) throws -> Checkpoint {
        var document = RecipeDocument()
        for s in ["lora.rank=4", "lora.alpha=8", "lora.dropout=0", "quantization.base=f32", "lora.init=pissa"] + settings { try document.override(s) }
        return Checkpoint(recipe: try Recipe(document), base: BaseIdentity(name: "tiny-llama", path: "", sha256: "", license: "apache-2.0"),
                          adapter: tensors.mapValues(StoredTensor.init), state: nil, metrics: TrainingMetrics())
    }

    /// PEFT's trained PiSSA tensors in a checkpoint: our conversion has PEFT's r and alpha, the
    /// trained A and B as its first r rows/columns, PEFT's B'·A' per module (A0, B0 are ours,
    /// recomputed, equal to PEFT's up to each singular pair's sign, which the product cancels),
    /// and over the original base gives the trained PiSSA model's logits.
    func testPEFTTrainedPiSSAConvertsAsPEFTDoes() throws {
        let trained = try SafetensorsFile(path: Self.fixtures + "/trained.safetensors").tensors()
        let peft = try SafetensorsFile(path: Self.fixtures + "/converted/adapter_model.safetensors").tensors()
        let peftConfig = try PEFTAdapterConfig(folder: Self.fixtures + "/converted")
        let golden = try SafetensorsFile(path: Self.fixtures + "/logits.safetensors").tensors()
        let archive = try Self.checkpoint(trained, settings: [])
        XCTAssertTrue(PlainLoRAAdapter.needsOriginalBase(archive))
        XCTAssertThrowsError(try PlainLoRAAdapter(checkpoint: archive, source: "ckpt")) { XCTAssertTrue("\($0)".contains("pissa"), "\($0)") }

        let converted = try PlainLoRAAdapter(checkpoint: archive, source: "ckpt", originalBase: try DecoderModel(huggingFaceFolder: TrainingLoopTests.base))
        XCTAssertEqual(converted.lora.rank, peftConfig.lora.rank)
        XCTAssertEqual(converted.lora.alpha, peftConfig.lora.alpha)
        XCTAssertEqual(converted.lora.scale, 2)
        XCTAssertEqual(Set(converted.tensors.keys), Set(peft.keys))
        for module in converted.modules {
            let (nameA, nameB) = (LoRAAdapter.pefName(module, "A"), LoRAAdapter.pefName(module, "B"))
            let (a, b) = (try XCTUnwrap(converted.tensors[nameA]), try XCTUnwrap(converted.tensors[nameB]))
            let (theirA, theirB) = (try XCTUnwrap(peft[nameA]), try XCTUnwrap(peft[nameB]))
            XCTAssertEqual(a.shape, theirA.shape, module)
            XCTAssertEqual(b.shape, theirB.shape, module)
            let trainedA = try XCTUnwrap(trained[nameA])
            XCTAssertEqual(Array(a.scalars.prefix(trainedA.count)), trainedA.scalars, "\(module): the trained A comes first")
            assertClose(noGrad { b.matmul(a) }, noGrad { theirB.matmul(theirA) }.scalars, atol: 1e-5, rtol: 0, "\(module) product")
        }
        let ours = try Self.logits(original: converted)
        XCTAssertLessThanOrEqual(Self.maxDifference(ours, try XCTUnwrap(golden["trained"])), 1e-4, "vs PEFT's trained PiSSA model")
        XCTAssertGreaterThan(Self.maxDifference(ours, try XCTUnwrap(golden["base"])), 1, "the adapter must matter")
    }

    /// A PiSSA run of Lorikeet's own (f32 base): the exported adapter over the original base is
    /// the trained model, and its PEFT folder says r = 8 and alpha doubled (rsLoRA: times √2).
    func testLorikeetPiSSAExportReproducesTheTrainedModel() throws {
        for rsLoRA in [false, true] {
            let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(
                ["quantization.base=f32", "lora.init=pissa", "lora.dropout=0", "training.grad_accumulation=1", "lora.rslora=\(rsLoRA)"]))
            for _ in 0..<3 { _ = try trainer.trainStep() }
            trainer.adapter.setTraining(false)
            let archive = trainer.checkpoint(base: BaseIdentity(name: "tiny-llama", path: "", sha256: "-", license: "apache-2.0"))
            let converted = try PlainLoRAAdapter(checkpoint: archive, source: "ckpt", originalBase: try DecoderModel(huggingFaceFolder: TrainingLoopTests.base))
            XCTAssertEqual(converted.lora.scale, trainer.recipe.lora.config.scale, accuracy: 1e-6)
            let trainedLogits = Self.logits(trainer.model)
            XCTAssertLessThanOrEqual(Self.maxDifference(try Self.logits(original: converted), trainedLogits), 1e-4, "rsLoRA \(rsLoRA)")
            // Exporting the trained A, B alone (ignoring the rewritten base) would be wrong.
            var naive = converted
            naive.tensors = archive.adapterTensors
            naive.lora = trainer.recipe.lora.config
            naive.lora.initialization = .default
            XCTAssertGreaterThan(Self.maxDifference(try Self.logits(original: naive), trainedLogits), 1e-2)

            let export = try PEFTExport(converted)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(export.config.utf8)) as? [String: Any])
            XCTAssertEqual(json["r"] as? Int, 8)
            let alpha = Double(trainer.recipe.lora.alpha)
            XCTAssertEqual(try XCTUnwrap(json["lora_alpha"] as? Double), rsLoRA ? alpha * 2.squareRoot() : 2 * alpha, accuracy: 1e-4)
            XCTAssertEqual(json["use_rslora"] as? Bool, rsLoRA)
        }
    }

    /// LoftQ fits W ≈ Q + s·B0·A0; the exported adapter applies to W, so per projection the
    /// effective weight W + s'·B'A' differs from the trained Q + s·B·A by that fit's residual
    /// W − Q − s·B0·A0, clearly less than exporting A, B as they are (a gap of W − Q). Compared
    /// on weights: the tiny model's logits amplify the NF4 error too unevenly for a max-norm.
    func testLoftQExportIsTheTrainedChangeOverTheOriginalBase() throws {
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(
            ["quantization.base=nf4", "lora.init=loftq", "lora.dropout=0", "training.grad_accumulation=1"]))
        for _ in 0..<3 { _ = try trainer.trainStep() }
        let archive = trainer.checkpoint(base: BaseIdentity(name: "tiny-llama", path: "", sha256: "-", license: "apache-2.0"))
        let original = try DecoderModel(huggingFaceFolder: TrainingLoopTests.base)
        let weights = Dictionary(uniqueKeysWithValues: original.namedLinears.compactMap { name, layer in
            (layer as? QuantizedLinear).map { (name, $0.weight.decoded()) }  // [O, I] each
        })
        let converted = try PlainLoRAAdapter(checkpoint: archive, source: "ckpt", originalBase: try DecoderModel(huggingFaceFolder: TrainingLoopTests.base))
        XCTAssertEqual(converted.lora.rank, 8)
        XCTAssertEqual(converted.modules.count, 14)
        func distance(_ x: Tensor, _ y: Tensor) -> Float { zip(x.scalars, y.scalars).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }
        for (module, layer) in trainer.adapter.layers {
            let w = try XCTUnwrap(weights[module]), q = try XCTUnwrap(layer.base as? QuantizedLinear).weight.decoded()
            let trained = noGrad { q + layer.delta() }
            let a = try XCTUnwrap(converted.tensors[LoRAAdapter.pefName(module, "A")]), b = try XCTUnwrap(converted.tensors[LoRAAdapter.pefName(module, "B")])
            let exported = noGrad { w + b.matmul(a).scaled(by: converted.lora.scale) }
            let naive = noGrad { w + layer.delta() }
            XCTAssertLessThan(distance(exported, trained), 0.9 * distance(naive, trained), module)
        }
    }
}
