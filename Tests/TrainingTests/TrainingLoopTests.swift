import Datasets
import Formats
import Foundation
import LoRA
import Architectures
import TensorCore
@testable import Training
import XCTest

/// The loop on the tiny Llama fixture: packing changes speed not results, a resumed run is
/// the same run, schedules are transformers'.
final class TrainingLoopTests: XCTestCase {
    static let base = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures/llama").path

    /// Seeded random examples over the fixture's vocabulary, answer tokens trained.
    static func examples(_ count: Int, vocabulary: Int, seed: UInt64) -> [TokenizedExample] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in
            let n = 3 + Int(rng.next() % 9), prompt = 1 + Int(rng.next() % 2)
            return TokenizedExample(ids: (0..<n).map { _ in Int32(rng.next() % UInt64(vocabulary)) }, trained: (0..<n).map { $0 >= prompt })
        }
    }

    func testPackedBatchLossEqualsTokenWeightedLossOfExamplesOneByOne() throws {
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        let examples = Self.examples(9, vocabulary: model.config.vocabSize, seed: 3)
        let packed = BatchingOptions(batchSize: 2, maxSeqLen: 32, mode: .packed)
        let rows = PackingPlan(lengths: examples.map(\.ids.count), order: Array(examples.indices), options: packed)
            .rows(ofBatch: 0).map { $0.map { examples[$0] } }
        let batched = rows.flatMap { $0 }
        XCTAssertGreaterThan(batched.count, 6)
        XCTAssertTrue(rows.contains { $0.count >= 3 }, "the test must really pack several examples in a row")
        let batch = Batch(rows: rows, options: packed)
        let packedLoss = Double(try model.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets).item)

        var total = 0.0, tokens = 0
        for example in batched {
            let single = BatchingOptions(batchSize: 1, maxSeqLen: example.ids.count, mode: .padded)
            let b = Batch(rows: [[example]], options: single)
            let l = Double(try model.loss(ids: b.ids, positions: b.positions, segments: nil, targets: b.targets).item)
            total += l * Double(b.trainedTokens)
            tokens += b.trainedTokens
        }
        XCTAssertEqual(tokens, batch.trainedTokens)
        XCTAssertEqual(packedLoss, total / Double(tokens), accuracy: 1e-5)
    }

    static func recipe(_ settings: [String]) throws -> Recipe {
        var document = RecipeDocument()
        for s in ["training.steps=6", "training.batch_size=2", "data.max_seq_len=24", "training.grad_accumulation=2",
                  "lora.rank=4", "lora.dropout=0.1", "training.warmup_steps=2", "training.learning_rate=0.01"] + settings {
            try document.override(s)
        }
        return try Recipe(document)
    }

    static func trainer(_ recipe: Recipe) throws -> Trainer {
        let model = try DecoderModel(huggingFaceFolder: base)
        let adapter = try LoRAAdapter.attach(to: model, recipe: recipe)
        let train = TokenizedDataset(path: "mem", examples: examples(23, vocabulary: model.config.vocabSize, seed: 9), statistics: DataStatistics())
        let valid = TokenizedDataset(path: "mem", examples: examples(5, vocabulary: model.config.vocabSize, seed: 10), statistics: DataStatistics())
        return Trainer(model: model, adapter: adapter, recipe: recipe, train: train, validation: valid)
    }

    func testResumedRunIsBitIdenticalToAStraightRun() throws {
        // (q8_0 needs input widths that are multiples of 32; the fixture's MLP is 48 wide.)
        // PiSSA rewrites the base at attach time: the resumed run must rebuild the same residual.
        for settings in [["quantization.base=nf4"], ["quantization.base=f32"], ["quantization.base=nf4", "lora.init=pissa"]] {
            let base = settings.joined(separator: " ")
            let recipe = try Self.recipe(settings)
            let straight = try Self.trainer(recipe)
            for _ in 0..<6 { _ = try straight.trainStep() }

            let first = try Self.trainer(recipe)
            for _ in 0..<3 { _ = try first.trainStep() }
            _ = first.recordValidation(try XCTUnwrap(first.validate()))
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-resume-\(UUID().uuidString)").path
            let run = RunDirectory(path: dir)
            let identity = BaseIdentity(name: "tiny", path: Self.base, sha256: "-", license: "apache-2.0")
            try run.save(first.checkpoint(base: identity), step: first.step, keepLast: 2)

            let resumed = try Self.trainer(recipe)
            try resumed.restore(Checkpoint(contentsOf: try XCTUnwrap(run.latest)), source: "test")
            XCTAssertEqual(resumed.step, 3)
            for _ in 0..<3 { _ = try resumed.trainStep() }
            for ((name, a), (_, b)) in zip(straight.adapter.parameters, resumed.adapter.parameters) {
                XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), "\(base): \(name) differs after resume")
            }
            XCTAssertEqual(Array(straight.metrics.losses.suffix(3)), Array(resumed.metrics.losses.suffix(3)), base)
            // Restored history was stored as Float32.
            XCTAssertEqual(straight.metrics.losses.prefix(3).map(Float.init), resumed.metrics.losses.prefix(3).map(Float.init), base)
            XCTAssertEqual(resumed.metrics.validationSteps, [3])
            // Training moved the adapter and lowered the loss on what it saw.
            XCTAssertNotEqual(straight.adapter.parameters.last?.1.scalars.contains { $0 != 0 }, false)
        }
    }

    func testGradientCheckpointingTrainsTheSameRun() throws {
        // Dropout 0.1 on every projection: the recomputation must replay each layer's masks.
        let plain = try Self.trainer(try Self.recipe(["training.gradient_checkpointing=false"]))
        let checkpointed = try Self.trainer(try Self.recipe(["training.gradient_checkpointing=true"]))
        XCTAssertFalse(plain.execution.gradientCheckpointing)
        XCTAssertTrue(checkpointed.execution.gradientCheckpointing)
        for _ in 0..<4 {
            let (p, c) = (try plain.trainStep(), try checkpointed.trainStep())
            XCTAssertEqual(p.loss, c.loss, accuracy: 1e-6 * p.loss)
            XCTAssertEqual(p.gradientNorm, c.gradientNorm, accuracy: 1e-5 * p.gradientNorm)
        }
        for ((name, a), (_, b)) in zip(plain.adapter.parameters, checkpointed.adapter.parameters) {
            for (x, y) in zip(a.scalars, b.scalars) { XCTAssertEqual(x, y, accuracy: 1e-5, name) }
        }
        XCTAssertEqual(plain.adapter.layers.mapValues(\.dropoutRNG), checkpointed.adapter.layers.mapValues(\.dropoutRNG),
                       "the replay leaves every generator where the plain run left it")
    }

    /// Keeping frozen products from the first run (the tiny model's all fit in 1 MiB) changes
    /// no number, with dropout on: the recomputation would have produced the same bits.
    func testKeptProductsTrainTheSameRun() throws {
        let plain = try Self.trainer(try Self.recipe(["training.checkpoint_keep_mb=0"]))
        let kept = try Self.trainer(try Self.recipe(["training.checkpoint_keep_mb=1"]))
        XCTAssertEqual(kept.execution.checkpointKeepBytes, 1 << 20)
        for _ in 0..<3 {
            let (p, k) = (try plain.trainStep(), try kept.trainStep())
            XCTAssertEqual(p.loss, k.loss)
            XCTAssertEqual(p.gradientNorm, k.gradientNorm)
        }
        for ((name, a), (_, b)) in zip(plain.adapter.parameters, kept.adapter.parameters) { XCTAssertEqual(a.scalars, b.scalars, name) }
        XCTAssertEqual(plain.adapter.layers.mapValues(\.dropoutRNG), kept.adapter.layers.mapValues(\.dropoutRNG))
    }

    /// bf16 compute rounds every frozen product's inputs to 8 significant bits (unit roundoff
    /// 2⁻⁹ ≈ 0.2%); the rounding errors of x and W are independent and mostly cancel over a
    /// row, and everything else stays f32, so losses, gradient norms and validation loss stay
    /// within 1% of the f32 run's over a few steps (observed: 0.01% on the training losses, 0.04% on validation; an f32 path taken by
    /// mistake would agree to 1e-6, hence the lower bound too).
    func testBF16ComputeTrainsCloseToF32() throws {
        let f32 = try Self.trainer(try Self.recipe(["training.compute_dtype=f32"]))
        let bf16 = try Self.trainer(try Self.recipe(["training.compute_dtype=bf16"]))
        XCTAssertEqual(bf16.recipe.training.computeDType, .bf16)
        var largest = 0.0
        for _ in 0..<4 {
            let (a, b) = (try f32.trainStep(), try bf16.trainStep())
            XCTAssertEqual(b.loss, a.loss, accuracy: 0.01 * a.loss)
            XCTAssertEqual(b.gradientNorm, a.gradientNorm, accuracy: 0.01 * a.gradientNorm)
            largest = max(largest, abs(b.loss - a.loss) / a.loss)
        }
        let (va, vb) = (try XCTUnwrap(f32.validate()), try XCTUnwrap(bf16.validate()))
        XCTAssertEqual(vb, va, accuracy: 0.01 * va)
        XCTAssertGreaterThan(largest, 1e-6, "bf16 compute left the losses unchanged: was it used?")
        print("bf16 vs f32: largest relative loss difference \(largest), validation \(va) vs \(vb)")
    }

    func testTrainingLowersTheLossAndKeepsOnlyTheLastCheckpoints() throws {
        let recipe = try Self.recipe(["training.steps=30", "lora.dropout=0", "training.grad_accumulation=1"])
        let trainer = try Self.trainer(recipe)
        let before = try XCTUnwrap(trainer.validate())
        var reports: [StepReport] = []
        while !trainer.finished { reports.append(try trainer.trainStep()) }
        XCTAssertEqual(reports.count, 30)
        XCTAssertLessThan(try XCTUnwrap(trainer.validate()), before)
        XCTAssertLessThan(reports.suffix(5).map(\.loss).reduce(0, +), reports.prefix(5).map(\.loss).reduce(0, +))
        let run = RunDirectory(path: FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-keep-\(UUID().uuidString)").path)
        for step in [10, 20, 30] { try run.save(trainer.checkpoint(base: BaseIdentity(name: "", path: "", sha256: "", license: "")), step: step, keepLast: 2) }
        XCTAssertEqual(run.stepFiles().map { ($0 as NSString).lastPathComponent }, ["step-000020.h5", "step-000030.h5"])
    }

    func testSchedulesMatchTransformers() throws {
        struct Goldens: Decodable { struct Case: Decodable { let kind: String; let warmup: Int; let min_ratio: Float; let rates: [Double] }; let peak: Float; let total: Int; let cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schedules.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        for c in goldens.cases {
            let schedule = LearningRateSchedule(kind: try XCTUnwrap(LearningRateSchedule.Kind(rawValue: c.kind)), peak: goldens.peak,
                                                warmupSteps: c.warmup, totalSteps: goldens.total, minRatio: c.min_ratio)
            for (step, want) in c.rates.enumerated() {
                XCTAssertEqual(Double(schedule.rate(afterSteps: step)), want, accuracy: 1e-9, "\(c.kind) warmup \(c.warmup) step \(step)")
            }
        }
    }

    func testClippingScalesToTheMaximumNorm() throws {
        let p = Tensor(shape: [2], scalars: [0, 0], requiresGrad: true)
        let loss = (p * Tensor(shape: [2], scalars: [3, 4])).sum()
        var accumulator = GradientAccumulator()
        accumulator.add([("p", p)], from: loss.backward())
        accumulator.add([("p", p)], from: loss.backward())  // two micro-batches: gradient (6, 8)
        XCTAssertEqual(accumulator.clip(maxNorm: 1), 10, accuracy: 1e-9)
        let g = try XCTUnwrap(accumulator.gradient("p"))
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-6)
    }
}

/// Gemma 2 trains: its soft-capped head goes through the fused loss.
final class Gemma2TrainingTests: XCTestCase {
    func testFusedLossEqualsCrossEntropyOfTheCappedLogitsAndTrainingLowersIt() throws {
        let folder = URL(fileURLWithPath: TrainingLoopTests.base).deletingLastPathComponent().appendingPathComponent("gemma2").path
        let model = try DecoderModel(huggingFaceFolder: folder)
        let cap = try XCTUnwrap(model.config.finalLogitSoftcap)
        let v = model.config.vocabSize
        let examples = TrainingLoopTests.examples(6, vocabulary: v, seed: 4)
        let options = BatchingOptions(batchSize: 2, maxSeqLen: 24, mode: .packed)
        let rows = PackingPlan(lengths: examples.map(\.ids.count), order: Array(examples.indices), options: options)
            .rows(ofBatch: 0).map { $0.map { examples[$0] } }
        let batch = Batch(rows: rows, options: options)
        let fused = Double(try model.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets).item)
        let logits = noGrad { model.logits(ids: batch.ids, positions: batch.positions, segments: batch.segments) }.scalars  // [B·T·V], capped
        var total = 0.0, count = 0
        for (n, target) in batch.targets.scalars.enumerated() where target >= 0 {
            let row: [Double] = logits[(n * v)..<((n + 1) * v)].map { Double($0) }
            XCTAssertLessThanOrEqual(row.map(abs).max() ?? 0, Double(cap) + 1e-4, "logits are capped")
            let m = row.max() ?? 0
            total += m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) - row[Int(target)]
            count += 1
        }
        XCTAssertEqual(fused, total / Double(count), accuracy: 1e-5)

        var document = RecipeDocument()
        for s in ["training.steps=8", "training.batch_size=2", "data.max_seq_len=24", "lora.rank=4", "lora.dropout=0",
                  "training.warmup_steps=0", "training.learning_rate=0.01", "training.schedule=constant"] { try document.override(s) }
        let recipe = try Recipe(document)
        let trainingModel = try DecoderModel(huggingFaceFolder: folder)
        let adapter = try LoRAAdapter.attach(to: trainingModel, recipe: recipe)
        let data = TokenizedDataset(path: "mem", examples: TrainingLoopTests.examples(8, vocabulary: v, seed: 9), statistics: DataStatistics())
        let trainer = Trainer(model: trainingModel, adapter: adapter, recipe: recipe, train: data, validation: data)
        let before = try XCTUnwrap(trainer.validate())
        while !trainer.finished { _ = try trainer.trainStep() }
        XCTAssertLessThan(try XCTUnwrap(trainer.validate()), before)
    }
}
