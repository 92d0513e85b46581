import Architectures
import Datasets
import Formats
import Foundation
import LoRA
import TensorCore
import Training

/// A QLoRA fine-tuning run: a recipe, its base, its data and its run folder, set up and ready
/// to train. ``run(progress:)`` trains to the end, validating, keeping the best adapter,
/// stopping early and saving as the recipe says, and reports each of those as an event; the
/// caller answers `.stop` to end the run with a saved, resumable checkpoint (a Ctrl-C handler
/// does exactly that).
///
/// Under Open MPI's `mpirun` the run is data-parallel without any change to the program:
/// every process (rank) builds the same `FineTune`, computes its share of each step's global
/// batch, and the ranks sum their gradients before every step (see ``Trainer`` and
/// ``BatchShare``). Every rank emits the events; rank 0 alone writes checkpoints (and emits
/// `.saved`). A `.stop` answered on any rank stops every rank together, one step later.
///
/// ```swift
/// let recipe = try Recipe(yaml: text, source: "my.yaml")
/// let run = try FineTune(recipe: recipe, runDirectory: "checkpoints/my-run")
/// let outcome = try run.run { event in
///     if case .step(let report) = event { print(report.step, report.loss) }
///     return .more
/// }
/// ```
public final class FineTune {
    /// The settings of the run (a resumed run: the checkpoint's, with any overrides).
    public let recipe: Recipe
    /// The base being adapted (its projections now carry the adapter).
    public let base: BaseModel
    /// Where checkpoints go.
    public let runDirectory: RunDirectory
    /// The loop underneath: step, metrics, optimizer state.
    public let trainer: Trainer
    /// What was set up, for a report before the first step.
    public let summary: FineTuneSummary
    let identity: BaseIdentity

    /// Sets up a run of `recipe` over `base` (loaded from `recipe.model.path` when nil) into
    /// `runDirectory`; with `resume`, continues the checkpoint's run (its recipe must be
    /// `recipe`, see ``resuming(_:overrides:runDirectory:base:reducer:)``). `reducer` connects the
    /// ranks of a data-parallel run; nil: Open MPI when `mpirun` started this process, else one
    /// process (and MPI is never loaded).
    public init(recipe: Recipe, base given: BaseModel? = nil, runDirectory: String, resume: Checkpoint? = nil, resumePath: String = "",
                reducer givenReducer: (any GradientReducer)? = nil) throws(LorikeetError) {
        let loadStart = Date()
        let reducer: any GradientReducer
        if let givenReducer { reducer = givenReducer } else {
            do { reducer = try DataParallel.reducer() } catch { throw .parallel(error.description) }
        }
        let t = recipe.training
        guard t.batchSize * t.gradientAccumulation >= reducer.ranks else {
            throw .recipe("a step's global batch has \(t.batchSize * t.gradientAccumulation) rows (training.batch_size \(t.batchSize) × training.grad_accumulation \(t.gradientAccumulation)) for \(reducer.ranks) ranks: give every rank at least one row (raise training.grad_accumulation or training.batch_size, or run fewer ranks)")
        }
        let base: BaseModel
        if let given { base = given } else { base = try BaseModel(loading: recipe.model.path) }
        let identity = try base.identity()
        if let resume, !resume.base.sha256.isEmpty, resume.base.sha256 != identity.sha256 {
            throw .model("\(base.path) is not the base this checkpoint was trained on (SHA-256 \(identity.sha256.prefix(12))…, checkpoint expects \(resume.base.sha256.prefix(12))…)")
        }
        let model = base.model
        let adapter = try lorikeet { try LoRAAdapter.attach(to: model, recipe: recipe) }
        guard !adapter.layers.isEmpty else {
            throw .recipe("lora.targets matches no module of this model (names look like q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)")
        }
        let encoder = ExampleEncoder(tokenizer: base.tokenizer, template: base.chatTemplate, trainOn: recipe.data.trainOn)
        let (train, valid) = try lorikeet {
            try RecipeData.load(recipe, encoder: encoder, cache: TokenizationCache(directory: CacheLocation.tokenizedData))
        }
        let trainer = Trainer(model: model, adapter: adapter, recipe: recipe, train: train, validation: valid, padID: base.tokenizer.eos ?? 0,
                              reducer: reducer)
        if let resume { try lorikeet { try trainer.restore(resume, source: resumePath) } }

        self.recipe = recipe
        self.base = base
        self.identity = identity
        self.trainer = trainer
        self.runDirectory = RunDirectory(path: runDirectory)
        summary = FineTuneSummary(
            base: identity, encoding: recipe.base, encodedBaseBytes: model.encodedWeightBytes + adapter.frozenBaseBytes,
            setupSeconds: Date().timeIntervalSince(loadStart), adaptedModules: adapter.layers.count,
            trainableParameters: adapter.parameters.reduce(0) { $0 + $1.tensor.count },
            trainPath: train.path, trainSource: train.source, train: train.statistics,
            packingEfficiency: train.packingEfficiency(trainer.batching, seed: recipe.training.seed),
            validationExamples: valid?.examples.count, skipped: SkippedRecords.of([train, valid]).report,
            runDirectory: runDirectory, totalSteps: trainer.totalSteps, startStep: trainer.step,
            parallel: reducer.ranks > 1 ? ParallelSummary(rank: reducer.rank, ranks: reducer.ranks, transport: reducer.transport,
                                                          globalRows: trainer.share.globalRows, rowsPerRank: trainer.share.rowsPerRank,
                                                          allReduceBytes: trainer.allReduceBytes) : nil)
    }

    /// Continues the run saved in the checkpoint at `path`, with the recipe it was started with
    /// plus `overrides` (`section.key=value`).
    public static func resuming(_ path: String, overrides: [String] = [], runDirectory: String, base: BaseModel? = nil,
                                reducer: (any GradientReducer)? = nil) throws(LorikeetError) -> FineTune {
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint(contentsOf: path) } catch { throw .model(error.description) }
        var recipe = checkpoint.recipe
        if !overrides.isEmpty {
            recipe = try lorikeet { try Recipe(yaml: checkpoint.recipe.yaml, source: path + " (recipe)", overrides: overrides) }
        }
        return try FineTune(recipe: recipe, base: base, runDirectory: runDirectory, resume: checkpoint, resumePath: path, reducer: reducer)
    }

    /// Trains to the end of the recipe (or until `progress` answers `.stop`, or early stopping),
    /// saving checkpoints as the recipe says and a final one; returns how it ended.
    public func run(progress: (FineTuneEvent) -> FineTuneDecision) throws(LorikeetError) -> FineTuneOutcome {
        let reducer = trainer.reducer
        let parallel = reducer.ranks > 1, leader = reducer.rank == 0
        // Until the run ends well, leaving this process stops the whole job (MPI_Abort).
        reducer.setCleanExit(false)
        let outcome = try train(progress: progress, parallel: parallel, leader: leader)
        reducer.setCleanExit(true)
        return outcome
    }

    func train(progress: (FineTuneEvent) -> FineTuneDecision, parallel: Bool, leader: Bool) throws(LorikeetError) -> FineTuneOutcome {
        if leader {
            do { try FileManager.default.createDirectory(atPath: runDirectory.path, withIntermediateDirectories: true) } catch {
                throw .training("\(runDirectory.path): cannot create the run folder (\(error.localizedDescription))")
            }
        }
        let t = recipe.training
        var stopRequested = false
        func emit(_ event: FineTuneEvent) {
            guard progress(event) == .stop else { return }
            // One process stops now; ranks vote in the next step's all-reduce and stop together.
            if parallel { trainer.requestStop() } else { stopRequested = true }
        }
        func save(_ reason: SaveReason) throws(LorikeetError) -> String {
            let path = runDirectory.stepFile(trainer.step)
            do { try trainer.verifyRanksAgree() } catch { throw .parallel(error.description) }
            guard leader else { return path }
            let previous = runDirectory.latest
            do { try runDirectory.save(trainer.checkpoint(base: identity), step: trainer.step, keepLast: recipe.output.keepLast) } catch {
                // The previous checkpoint is untouched (saves are atomic): the run can go on from it.
                throw .training(error.description + "\nthe last complete checkpoint is " + (previous ?? "none (nothing was saved yet)")
                                + "; free space and resume it with --resume latest")
            }
            emit(.saved(path: path, step: trainer.step, reason: reason))
            return path
        }
        func validate() throws(LorikeetError) {
            let loss: Double?
            do { loss = try trainer.validate() } catch { throw .training(error.description) }
            guard let loss else { return }
            let improved = trainer.recordValidation(loss)
            var best: String?
            if improved && leader {
                do { try trainer.checkpoint(base: identity).write(to: runDirectory.bestFile) } catch { throw .training(error.description) }
                best = runDirectory.bestFile
            }
            emit(.validation(step: trainer.step, loss: loss, improved: improved, savedBest: best))
        }

        while !trainer.finished {
            let report: StepReport
            do { report = try trainer.trainStep() } catch {
                if case .parallel(let e) = error { throw .parallel(e.description) }
                guard case .nonFiniteLoss = error else { throw .training(error.description) }
                throw .training(error.description + "\nlast good checkpoint: " + (runDirectory.latest ?? "none yet (nothing was saved before this step)"))
            }
            if report.parallel?.stopRequested == true { stopRequested = true }
            emit(.step(report))
            if t.evalEvery > 0, report.step % t.evalEvery == 0, report.step < trainer.totalSteps {
                try validate()
                if trainer.earlyStoppingReached {
                    let path = try save(.earlyStopping)
                    return .stoppedEarly(checkpoint: path, step: trainer.step)
                }
            }
            if stopRequested {
                let path = try save(.interrupted)
                return .interrupted(checkpoint: path, step: trainer.step)
            }
            if recipe.output.saveEvery > 0, report.step % recipe.output.saveEvery == 0, report.step < trainer.totalSteps {
                _ = try save(.periodic(every: recipe.output.saveEvery))
            }
        }
        try validate()
        let path = try save(.final)
        return .completed(checkpoint: path, step: trainer.step)
    }
}

/// What a run reports as it goes.
public enum FineTuneEvent: Sendable {
    /// An optimizer step finished.
    case step(StepReport)
    /// The validation loss after `step`; `savedBest` is best.h5's path when it improved.
    case validation(step: Int, loss: Double, improved: Bool, savedBest: String?)
    /// A checkpoint was written.
    case saved(path: String, step: Int, reason: SaveReason)
}

/// The caller's answer to each event.
public enum FineTuneDecision: Sendable {
    /// Keep training.
    case more
    /// Save a checkpoint after the current step and stop.
    case stop
}

/// Why a checkpoint was written.
public enum SaveReason: Sendable, Equatable, CustomStringConvertible {
    case periodic(every: Int)
    case earlyStopping
    case interrupted
    case final

    /// Words for a log line.
    public var description: String {
        switch self {
        case .periodic(let n): return "every \(n) steps"
        case .earlyStopping: return "early stopping"
        case .interrupted: return "interrupted"
        case .final: return "final"
        }
    }
}

/// How a run ended, with its last checkpoint.
public enum FineTuneOutcome: Sendable, Equatable {
    case completed(checkpoint: String, step: Int)
    /// No validation improvement in `training.early_stopping_patience` evaluations.
    case stoppedEarly(checkpoint: String, step: Int)
    /// The caller answered `.stop`.
    case interrupted(checkpoint: String, step: Int)

    /// The path of the last checkpoint written.
    public var checkpoint: String {
        switch self {
        case .completed(let c, _), .stoppedEarly(let c, _), .interrupted(let c, _): return c
        }
    }
}

/// A run as set up, before its first step.
public struct FineTuneSummary: Sendable {
    /// The base's name, path, SHA-256 and license.
    public var base: BaseIdentity
    /// How the frozen base is encoded while training.
    public var encoding: BasePrecision
    /// Encoded bytes of the frozen base (embedding, projections, head).
    public var encodedBaseBytes: Int
    /// Seconds to load and encode the base, attach the adapter and prepare the data.
    public var setupSeconds: Double
    /// Projections that carry an adapter.
    public var adaptedModules: Int
    /// Adapter parameters trained.
    public var trainableParameters: Int
    /// The training data file.
    public var trainPath: String
    /// Whether it was tokenized now or read from the cache.
    public var trainSource: TokenizationSource
    /// What the training data holds.
    public var train: DataStatistics
    /// Share of row capacity holding real tokens.
    public var packingEfficiency: Double
    /// Validation examples, when there is a validation set.
    public var validationExamples: Int?
    /// Bad records skipped (with `data.skip_invalid`), as report lines.
    public var skipped: [String]
    /// The run folder.
    public var runDirectory: String
    /// Optimizer steps the recipe asks for.
    public var totalSteps: Int
    /// The step the run starts from (nonzero when resumed).
    public var startStep: Int
    /// How the ranks share each step (nil for one process).
    public var parallel: ParallelSummary?
}

/// A data-parallel run's layout, as set up.
public struct ParallelSummary: Sendable, Equatable {
    /// This process's rank and the number of ranks.
    public var rank: Int, ranks: Int
    /// What carries the all-reduce.
    public var transport: String
    /// Rows of a step's global batch (training.batch_size × training.grad_accumulation).
    public var globalRows: Int
    /// The fewest and most rows a rank computes per step.
    public var rowsPerRank: ClosedRange<Int>
    /// Bytes each step's all-reduce sums (every LoRA gradient, Float32, and three extras).
    public var allReduceBytes: Int
}
