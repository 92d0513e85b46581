import Datasets
import Foundation
import LoRA
import TensorCore
@testable import Training
import XCTest

/// Data-parallel steps without MPI: N trainers in one process, each told it is rank k of N,
/// run the two halves of a step (`accumulateShare`, `applyStep`) with the all-reduce done by
/// hand in between, and must take the steps one process takes with gradient accumulation.
/// (The same loop over real `mpirun` ranks is in LorikeetCLITests' DataParallelRunTests.)
final class DataParallelTests: XCTestCase {
    /// Rank `rank` of `ranks`; the test sums the buffers itself, so the collectives do nothing.
    final class Rank: GradientReducer {
        let rank: Int, ranks: Int
        init(_ rank: Int, of ranks: Int) { (self.rank, self.ranks) = (rank, ranks) }
        var transport: String { "test" }
        func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) throws(ReducerError) {}
        func allReduceSum(_ values: inout [Double], label: String) throws(ReducerError) {}
        func broadcast(_ bytes: inout [UInt8], from root: Int, label: String) throws(ReducerError) {}
        func barrier(label: String) throws(ReducerError) {}
        func setCleanExit(_ clean: Bool) {}
    }

    static func trainers(_ recipe: Recipe, ranks: Int) throws -> [Trainer] {
        try (0..<ranks).map { k in
            let t = try TrainingLoopTests.trainer(recipe)
            return Trainer(model: t.model, adapter: t.adapter, recipe: recipe, train: t.stream.dataset, validation: t.validation,
                           reducer: Rank(k, of: ranks))
        }
    }

    /// One step over every rank: each computes its share, the flat buffers are summed rank by
    /// rank (as the all-reduce does) into every rank's, then each applies the step.
    static func step(_ ranks: [Trainer]) throws -> [StepReport] {
        let locals = try ranks.map { try $0.accumulateShare() }
        let count = try XCTUnwrap(ranks[0].accumulator.flat).count
        var sum = [Float](repeating: 0, count: count)
        for r in ranks {
            let flat = try XCTUnwrap(r.accumulator.flat)
            XCTAssertEqual(flat.count, count)
            for i in 0..<count { sum[i] += flat.base[i] }
        }
        for r in ranks { for i in 0..<count { r.accumulator.flat!.base[i] = sum[i] } }
        return try zip(ranks, locals).map { try $0.applyStep($1, start: Date(), computeSeconds: 0, allReduceSeconds: 0) }
    }

    static func maxDifference(_ a: Trainer, _ b: Trainer) -> Float {
        var worst: Float = 0
        for ((_, x), (_, y)) in zip(a.adapter.parameters, b.adapter.parameters) {
            for (u, v) in zip(x.scalars, y.scalars) { worst = max(worst, abs(u - v)) }
        }
        return worst
    }

    func testSharesCoverEveryRowOfTheStepOnceInOrder() {
        for (ranks, micro, rows) in [(1, 1, 4), (1, 3, 2), (2, 2, 4), (2, 1, 4), (3, 2, 3), (4, 3, 5), (5, 1, 5), (2, 3, 1)] {
            var seen: [(Int, Int)] = []
            for k in 0..<ranks {
                let share = BatchShare(rank: k, ranks: ranks, microBatches: micro, rowsPerMicroBatch: rows)
                XCTAssertEqual(share.parts.reduce(0) { $0 + $1.rows.count }, share.rowCount)
                for part in share.parts {
                    XCTAssertFalse(part.rows.isEmpty)
                    XCTAssertTrue(part.rows.lowerBound >= 0 && part.rows.upperBound <= rows)
                    seen += part.rows.map { (part.microBatch, $0) }
                }
                XCTAssertLessThanOrEqual(share.rowsPerRank.upperBound - share.rowsPerRank.lowerBound, 1, "rows spread evenly")
            }
            let expected = (0..<micro).flatMap { m in (0..<rows).map { (m, $0) } }
            XCTAssertTrue(seen.elementsEqual(expected, by: ==), "\(ranks) ranks, \(micro) × \(rows): \(seen)")
        }
        // Whole micro-batches when the rank count divides them; one process computes them all.
        XCTAssertEqual(BatchShare(rank: 1, ranks: 2, microBatches: 4, rowsPerMicroBatch: 3).parts,
                       [.init(microBatch: 2, rows: 0..<3), .init(microBatch: 3, rows: 0..<3)])
        XCTAssertEqual(BatchShare(rank: 0, ranks: 1, microBatches: 2, rowsPerMicroBatch: 3).parts,
                       [.init(microBatch: 0, rows: 0..<3), .init(microBatch: 1, rows: 0..<3)])
        // Rows 4 ..< 8 of 3 × 4: the end of micro-batch 1 … the start of micro-batch 2.
        XCTAssertEqual(BatchShare(rank: 1, ranks: 3, microBatches: 3, rowsPerMicroBatch: 4).parts,
                       [.init(microBatch: 1, rows: 0..<4)])
        XCTAssertEqual(BatchShare(rank: 1, ranks: 2, microBatches: 3, rowsPerMicroBatch: 3).parts,
                       [.init(microBatch: 1, rows: 1..<3), .init(microBatch: 2, rows: 0..<3)])
    }

    func testRowsOfABatchAreTheBatchOfThoseRows() {
        let options = BatchingOptions(batchSize: 3, maxSeqLen: 12, mode: .packed, padID: 0)
        let examples = TrainingLoopTests.examples(5, vocabulary: 50, seed: 4).map { options.fit($0)! }
        let rows = [[examples[0], examples[1]], [examples[2]], [examples[3], examples[4]]]
        let whole = Batch(rows: rows, options: options)
        for range in [0..<1, 1..<3, 0..<3, 2..<3] {
            var sub = options
            sub.batchSize = range.count
            let direct = Batch(rows: Array(rows[range]), options: sub), sliced = whole.rows(range)
            XCTAssertEqual(sliced.ids, direct.ids)
            XCTAssertEqual(sliced.positions, direct.positions)
            XCTAssertEqual(sliced.segments, direct.segments)
            XCTAssertEqual(sliced.targets, direct.targets)
            XCTAssertEqual([sliced.examples, sliced.realTokens, sliced.trainedTokens], [direct.examples, direct.realTokens, direct.trainedTokens], "\(range)")
        }
        // A padding row (a short last batch) slices to an empty batch.
        let short = Batch(rows: Array(rows.prefix(2)), options: options).rows(2..<3)
        XCTAssertEqual([short.examples, short.realTokens, short.trainedTokens], [0, 0, 0])
    }

    /// The must-have: N ranks × their share = one process with accumulation, step by step, with
    /// dropout on. Two ranks with two micro-batches compute exactly what one process computes
    /// (each micro-batch whole, the same masks, a + b summed once), in bf16 as the recipes run.
    /// Splits inside micro-batches (2 ranks × 1, 3 ranks × 2) re-associate the token sums, so
    /// they agree to rounding — in f32 here: bf16 products turn such last-bit differences into
    /// bf16 rounding flips downstream, and a few steps later runs differ by ~1e-3 (measured).
    func testRanksTakeTheStepsOfOneProcessWithAccumulation() throws {
        for (ranks, accumulation, compute, exact) in [(2, 2, "bf16", true), (2, 1, "f32", false), (3, 2, "f32", false)] {
            let recipe = try TrainingLoopTests.recipe(["training.grad_accumulation=\(accumulation)", "training.batch_size=3",
                                                       "training.compute_dtype=\(compute)", "lora.dropout=0.1"])
            let single = try TrainingLoopTests.trainer(recipe)
            let group = try Self.trainers(recipe, ranks: ranks)
            let label = "\(ranks) ranks, accumulation \(accumulation), \(compute)"
            for _ in 0..<4 {
                let one = try single.trainStep()
                let all = try Self.step(group)
                for report in all {
                    // The ranks' loss travels as Float32 in the all-reduce; one process sums it in Double.
                    XCTAssertEqual(report.loss, one.loss, accuracy: (exact ? 1e-7 : 1e-6) * one.loss, label)
                    XCTAssertEqual(report.gradientNorm, one.gradientNorm, accuracy: (exact ? 0 : 1e-5) * one.gradientNorm, label)
                    XCTAssertEqual(report.trainedTokens, one.trainedTokens, label)
                    XCTAssertEqual(report.parallel?.ranks, ranks)
                }
            }
            for rank in group {
                let difference = Self.maxDifference(single, rank)
                if exact { XCTAssertEqual(difference, 0, label) } else { XCTAssertLessThan(difference, 1e-5, label) }
                XCTAssertEqual(rank.state, group[0].state, "every rank holds the same state")
                XCTAssertEqual(rank.state.dataCursor, single.state.dataCursor)
            }
        }
    }

    /// A run saved by two ranks resumes in one process (and the reverse) and continues with the
    /// losses the uninterrupted run has.
    func testARunSavedOnTwoRanksResumesOnOneAndBack() throws {
        let recipe = try TrainingLoopTests.recipe(["training.grad_accumulation=2", "training.batch_size=2", "lora.dropout=0.1"])
        let straight = try TrainingLoopTests.trainer(recipe)
        let straightLosses = try (0..<6).map { _ in try straight.trainStep().loss }

        let pair = try Self.trainers(recipe, ranks: 2)
        for _ in 0..<3 { _ = try Self.step(pair) }
        let saved = pair[0].checkpoint(base: BaseIdentity(name: "tiny", path: "-", sha256: "-", license: "-"))
        let resumed = try TrainingLoopTests.trainer(recipe)
        try resumed.restore(saved, source: "two ranks")
        let resumedLosses = try (0..<3).map { _ in try resumed.trainStep().loss }
        XCTAssertEqual(resumedLosses, Array(straightLosses.suffix(3)))
        XCTAssertEqual(Self.maxDifference(straight, resumed), 0)

        // And one process's checkpoint continued by two ranks.
        let first = try TrainingLoopTests.trainer(recipe)
        for _ in 0..<3 { _ = try first.trainStep() }
        let again = try Self.trainers(recipe, ranks: 2)
        for r in again { try r.restore(first.checkpoint(base: saved.base), source: "one process") }
        let continued = try (0..<3).map { _ in try Self.step(again)[0].loss }
        for (a, b) in zip(continued, straightLosses.suffix(3)) { XCTAssertEqual(a, b, accuracy: 1e-7 * b, "Float32 in the all-reduce") }
        XCTAssertEqual(Self.maxDifference(straight, again[0]), 0)
    }

    /// The masks of a micro-batch depend on the step and its index, not on what was drawn
    /// before: a trainer that has trained two steps and a fresh one give micro-batch 1 of step 5
    /// the same generators; other keys give other generators.
    func testDropoutMasksAreKeyedByStepAndMicroBatch() throws {
        let recipe = try TrainingLoopTests.recipe(["lora.dropout=0.5"])
        let trained = try TrainingLoopTests.trainer(recipe), fresh = try TrainingLoopTests.trainer(recipe)
        for _ in 0..<2 { _ = try trained.trainStep() }
        XCTAssertNotEqual(trained.adapter.layers.mapValues(\.dropoutRNG), fresh.adapter.layers.mapValues(\.dropoutRNG))
        trained.seedDropout(step: 5, microBatch: 1, firstToken: 0)
        fresh.seedDropout(step: 5, microBatch: 1, firstToken: 0)
        let keyed = fresh.adapter.layers.mapValues(\.dropoutRNG)
        XCTAssertEqual(trained.adapter.layers.mapValues(\.dropoutRNG), keyed)
        fresh.seedDropout(step: 5, microBatch: 0, firstToken: 0)
        XCTAssertNotEqual(fresh.adapter.layers.mapValues(\.dropoutRNG), keyed)
        fresh.seedDropout(step: 4, microBatch: 1, firstToken: 0)
        XCTAssertNotEqual(fresh.adapter.layers.mapValues(\.dropoutRNG), keyed)
        XCTAssertEqual(Set(keyed.values.map { $0.state.0 }).count, keyed.count, "every module draws its own masks")
    }

    /// A rank whose data differs from the others' is caught at its first step.
    func testRanksReadingDifferentDataAreStopped() throws {
        let recipe = try TrainingLoopTests.recipe(["training.grad_accumulation=2", "training.batch_size=2"])
        let pair = try Self.trainers(recipe, ranks: 2)
        let other = try TrainingLoopTests.trainer(recipe)
        let stray = Trainer(model: other.model, adapter: other.adapter, recipe: recipe,
                            train: TokenizedDataset(path: "other", examples: TrainingLoopTests.examples(23, vocabulary: other.model.config.vocabSize, seed: 77),
                                                    statistics: DataStatistics()),
                            validation: nil, reducer: Rank(1, of: 2))
        XCTAssertThrowsError(try Self.step([pair[0], stray])) { error in
            XCTAssertTrue("\(error)".contains("disagree on the data of step 1"), "\(error)")
        }
    }

    func testWithoutMPIRunsOneProcessAndABrokenMPIIsNamed() {
        XCTAssertTrue(try DataParallel.reducer(environment: [:]) is SingleProcess)
        XCTAssertFalse(DataParallel.isLaunchedByMPI([:]))
        XCTAssertThrowsError(try DataParallel.reducer(environment: ["OMPI_COMM_WORLD_SIZE": "2", "LORIKEET_MPI_LIBRARY": "/nonexistent/libmpi.so.40"])) {
            XCTAssertTrue("\($0)".contains("/nonexistent/libmpi.so.40"), "\($0)")
            XCTAssertTrue("\($0)".contains("OMPI_COMM_WORLD_SIZE=2"), "\($0)")
        }
    }
}
