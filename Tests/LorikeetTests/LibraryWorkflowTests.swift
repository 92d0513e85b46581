import Foundation
import Lorikeet  // the public API only: what a dependent package sees
import XCTest

/// The user's day through the library: fine-tune, evaluate, merge, generate, on the tiny Llama
/// that llama.cpp's converter wrote (96-token SentencePiece vocabulary).
final class LibraryWorkflowTests: XCTestCase {
    static let tinyModel = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures/llama/model.gguf").path
    static let sentences = ["the adapter and the attention", "an embedding of the adapter", "attention and embeddings",
                            "the adapter in the attention", "a tab of dings and the adapter", "the embed and the attention"]
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-library-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        for (split, count) in [("train", 24), ("valid", 6)] {
            let lines = (0..<count).map { i in #"{"text": "\#(Self.sentences[i % Self.sentences.count]) \#(Self.sentences[(i * 5 + 1) % Self.sentences.count])"}"# }
            try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/data/\(split).jsonl", atomically: true, encoding: .utf8)
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A two-step bf16 QLoRA recipe over the tiny model.
    func recipe() -> Recipe {
        var recipe = Recipe()
        recipe.model.path = Self.tinyModel
        recipe.data.path = directory + "/data"
        recipe.data.maxSeqLen = 24
        recipe.lora.rank = 4
        recipe.lora.alpha = 8
        recipe.lora.dropout = 0.1
        recipe.training.steps = 2
        recipe.training.batchSize = 2
        recipe.training.learningRate = 5e-3
        recipe.training.warmupSteps = 0
        recipe.training.evalEvery = 1
        recipe.training.computeDType = .bf16
        recipe.output.saveEvery = 0
        return recipe
    }

    func testFineTuneEvaluateMergeAndGenerateThroughThePublicAPI() async throws {
        // Fine-tune: events in order, the final checkpoint saved.
        let run = try FineTune(recipe: recipe(), runDirectory: directory + "/run")
        var steps: [Int] = [], validations: [Double] = [], saved: [String] = []
        let outcome = try run.run { event in
            switch event {
            case .step(let report): steps.append(report.step)
            case .validation(_, let loss, _, _): validations.append(loss)
            case .saved(let path, _, _): saved.append(path)
            }
            return .more
        }
        XCTAssertEqual(steps, [1, 2])
        XCTAssertEqual(validations.count, 2, "after step 1 (eval_every 1) and at the end")
        guard case .completed(let checkpointPath, 2) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(saved, [checkpointPath])

        // Evaluate the checkpoint on its own validation set: training's recorded loss, because
        // evaluation computes in the recipe's compute dtype (bf16) like training did.
        let checkpoint = try Checkpoint(contentsOf: checkpointPath)
        let recorded = try XCTUnwrap(checkpoint.metrics.validationLosses.last)
        let report = try EvaluationRequest(adapter: checkpointPath).run()
        XCTAssertEqual(report.runs.count, 1)
        XCTAssertEqual(report.runs[0].loss, recorded, accuracy: 1e-6 * recorded)
        // The same checkpoint evaluated in f32 gives another loss: the comparison above can fail.
        var f32 = checkpoint
        f32.recipe.training.computeDType = .f32
        try f32.write(to: directory + "/f32.h5")
        let f32Loss = try EvaluationRequest(adapter: directory + "/f32.h5").run().runs[0].loss
        XCTAssertGreaterThan(abs(f32Loss - recorded), 1e-5, "bf16 and f32 evaluations must differ for this test to mean anything")

        // Merge onto the base it trained against (the default, as for generate and eval): the
        // merged file gives the unmerged model's logits.
        var merge = MergeRequest(adapter: checkpointPath, output: directory + "/merged.gguf", format: .gguf)
        merge.quant = .f32
        let merged = try merge.run()
        XCTAssertEqual(merged.adapter.onto, .trained)
        let ids: [Int32] = [1, 21, 60, 54, 21, 61]
        let unmerged = try BaseModel(loading: Self.tinyModel)
        XCTAssertEqual(try unmerged.apply(AdapterSource.load(checkpointPath)).baseWeights, "source")  // the default
        let mergedLogits = try BaseModel(loading: merged.output).logits(ids: ids).scalars
        let unmergedLogits = try unmerged.logits(ids: ids).scalars
        XCTAssertLessThanOrEqual(zip(mergedLogits, unmergedLogits).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
        let plain = try BaseModel(loading: Self.tinyModel).logits(ids: ids).scalars
        XCTAssertGreaterThan(zip(plain, unmergedLogits).map { abs($0 - $1) }.max() ?? 0, 1e-3, "the adapter must change the model")

        // Generate: the AsyncSequence yields the text a synchronous run of the same steps gives.
        var streamed = "", summary: GenerationSummary?
        for try await event in try GenerationSession(unmerged).generate("the adapter", parseSpecial: false, options: .greedy(maxTokens: 12)) {
            switch event {
            case .text(let piece): streamed += piece
            case .finished(let s): summary = s
            }
        }
        let collected = try GenerationSession(unmerged).generate("the adapter", parseSpecial: false, options: .greedy(maxTokens: 12)).collect()
        XCTAssertEqual(streamed, collected.text)
        let streamedSummary = try XCTUnwrap(summary)
        XCTAssertEqual(streamedSummary.text, collected.text)
        XCTAssertEqual(streamedSummary.generatedTokens, collected.generatedTokens)
        XCTAssertEqual(streamedSummary.promptTokens, collected.promptTokens)
        XCTAssertEqual(streamedSummary.finish, collected.finish)
        XCTAssertGreaterThan(collected.generatedTokens, 0)
    }

    /// `.stop` from the progress callback saves a resumable checkpoint after the current step,
    /// and resuming it finishes with the uninterrupted run's losses.
    func testStopSavesAndResumeContinuesTheSameRun() throws {
        var settings = recipe()
        settings.training.steps = 4
        settings.training.evalEvery = 0
        var straight: [Double] = []
        _ = try FineTune(recipe: settings, runDirectory: directory + "/straight").run { event in
            if case .step(let r) = event { straight.append(r.loss) }
            return .more
        }
        var first: [Double] = []
        let stopped = try FineTune(recipe: settings, runDirectory: directory + "/stopped").run { event in
            if case .step(let r) = event { first.append(r.loss); return r.step == 2 ? .stop : .more }
            return .more
        }
        guard case .interrupted(let path, 2) = stopped else { return XCTFail("\(stopped)") }
        var rest: [Double] = []
        _ = try FineTune.resuming(path, runDirectory: directory + "/stopped").run { event in
            if case .step(let r) = event { rest.append(r.loss) }
            return .more
        }
        XCTAssertEqual(first + rest, straight)
    }
}
