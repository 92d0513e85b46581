import Datasets
import Foundation
import LoRA
import Architectures
import TensorCore

/// What a training run reports as it goes; the CLI renders these (a live line on a terminal,
/// plain log lines otherwise). Libraries never print.
public enum TrainingEvent: Sendable {
    case step(StepReport)
    case validation(step: Int, loss: Double, improved: Bool)
    case stopped(reason: String)
}

public struct StepReport: Sendable {
    public var step: Int, totalSteps: Int
    public var loss: Double
    public var learningRate: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Double
    public var trainedTokens: Int, realTokens: Int
    /// Real (non-padding) tokens per second over this step.
    public var tokensPerSecond: Double
    public var elapsed: Double
    public var eta: Double
    public var epoch: Int
    public var peakResidentBytes: Int?
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int)
    case model(ModelError)
    case checkpoint(String)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step):
            return "the loss became NaN or infinite at step \(step); lower training.learning_rate or set training.max_grad_norm (the last good checkpoint is kept)"
        case .model(let e): return e.description
        case .checkpoint(let why): return why
        }
    }
}

/// Loss curves kept for the checkpoint and `lorikeet plot`.
public struct TrainingMetrics: Sendable, Equatable {
    public var steps: [Int] = [], losses: [Double] = [], learningRates: [Double] = [], tokensPerSecond: [Double] = []
    public var validationSteps: [Int] = [], validationLosses: [Double] = []
    public init() {}
}

/// The QLoRA loop: micro-batches accumulated into steps, clipped, AdamW with a schedule,
/// validation, keep-best and early stopping. Everything that decides the next step (adapter,
/// moments, step, data cursor, dropout generators) is state a checkpoint saves and restores,
/// so a resumed run continues bit for bit.
public final class Trainer {
    public let model: DecoderModel
    public let adapter: LoRAAdapter
    public let recipe: Recipe
    public let validation: TokenizedDataset?
    public internal(set) var optimizer: AdamW
    public internal(set) var stream: BatchStream
    public internal(set) var step = 0
    public internal(set) var metrics = TrainingMetrics()
    public internal(set) var bestValidationLoss: Double?
    public internal(set) var evaluationsWithoutImprovement = 0
    public let totalSteps: Int
    let schedule: LearningRateSchedule
    var accumulator = GradientAccumulator()

    public init(model: DecoderModel, adapter: LoRAAdapter, recipe: Recipe, train: TokenizedDataset, validation: TokenizedDataset?) {
        self.model = model
        self.adapter = adapter
        self.recipe = recipe
        self.validation = validation
        let t = recipe.training
        model.gradientCheckpointing = t.gradientCheckpointing
        model.checkpointKeepBytes = min(t.checkpointKeepMiB, 1 << 30) << 20  // 1 PiB: any real budget
        optimizer = AdamW(learningRate: t.learningRate, weightDecay: t.weightDecay)
        stream = BatchStream(dataset: train, options: recipe.data.batching, seed: t.seed)
        if t.steps > 0 {
            totalSteps = t.steps
        } else {
            let batches = train.passShape(recipe.data.batching).batches
            totalSteps = max(1, (t.epochs * batches + t.gradientAccumulation - 1) / t.gradientAccumulation)
        }
        schedule = LearningRateSchedule(kind: t.schedule, peak: t.learningRate, warmupSteps: t.warmupSteps,
                                        totalSteps: totalSteps, minRatio: t.minLRRatio)
    }

    /// Mean loss of one batch under the current adapter (token-weighted over trained targets).
    func batchLoss(_ batch: Batch) throws(TrainingError) -> Tensor {
        do { return try model.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets) } catch {
            throw .model(error)
        }
    }

    /// One optimizer step over `gradientAccumulation` micro-batches.
    public func trainStep() throws(TrainingError) -> StepReport {
        let start = Date()
        let t = recipe.training
        adapter.setTraining(true)
        let batches = (0..<t.gradientAccumulation).map { _ in stream.next() }
        let trained = batches.reduce(0) { $0 + $1.trainedTokens }
        let parameters = adapter.parameters
        var loss = 0.0
        for batch in batches where batch.trainedTokens > 0 {
            let weight = Float(batch.trainedTokens) / Float(max(trained, 1))
            try withComputeDType(t.computeDType) { () throws(TrainingError) in
                let l = try batchLoss(batch)
                guard l.item.isFinite else { throw .nonFiniteLoss(step: step + 1) }
                loss += Double(l.item) * Double(weight)
                accumulator.add(parameters, from: l.scaled(by: weight).backward())
            }
        }
        let norm = t.maxGradNorm.map { accumulator.clip(maxNorm: $0) } ?? accumulator.globalNorm
        guard norm.isFinite else { throw .nonFiniteLoss(step: step + 1) }
        let rate = schedule.rate(afterSteps: step)
        optimizer.learningRate = rate
        optimizer.update(parameters, accumulated: accumulator.sums)
        accumulator.reset()
        step += 1

        let seconds = Date().timeIntervalSince(start)
        let real = batches.reduce(0) { $0 + $1.realTokens }
        metrics.steps.append(step)
        metrics.losses.append(loss)
        metrics.learningRates.append(Double(rate))
        metrics.tokensPerSecond.append(Double(real) / max(seconds, 1e-9))
        let recent = metrics.tokensPerSecond.suffix(10)
        let meanSeconds = Double(real) / max(recent.reduce(0, +) / Double(recent.count), 1e-9)
        return StepReport(step: step, totalSteps: totalSteps, loss: loss, learningRate: rate, gradientNorm: norm,
                          trainedTokens: trained, realTokens: real, tokensPerSecond: Double(real) / max(seconds, 1e-9),
                          elapsed: seconds, eta: meanSeconds * Double(totalSteps - step), epoch: stream.cursor.epoch,
                          peakResidentBytes: ProcessMemory.peakResidentBytes)
    }

    /// Token-weighted mean loss over the validation set (or its first `evalBatches` batches).
    public func validate() throws(TrainingError) -> Double? {
        guard let validation else { return nil }
        adapter.setTraining(false)
        defer { adapter.setTraining(true) }
        var batches = BatchStream(dataset: validation, options: recipe.data.batching, seed: 0, shuffle: false).allBatches()
        if recipe.training.evalBatches > 0 { batches = Array(batches.prefix(recipe.training.evalBatches)) }
        var total = 0.0, tokens = 0
        for batch in batches where batch.trainedTokens > 0 {
            let l = try withComputeDType(recipe.training.computeDType) { () throws(TrainingError) -> Tensor in
                try noGrad { Result { () throws(TrainingError) -> Tensor in try batchLoss(batch) } }.get()
            }
            total += Double(l.item) * Double(batch.trainedTokens)
            tokens += batch.trainedTokens
        }
        return tokens > 0 ? total / Double(tokens) : nil
    }

    /// Records a validation loss; returns whether it is the best so far.
    public func recordValidation(_ loss: Double) -> Bool {
        metrics.validationSteps.append(step)
        metrics.validationLosses.append(loss)
        let improved = bestValidationLoss.map { loss < $0 } ?? true
        if improved { bestValidationLoss = loss; evaluationsWithoutImprovement = 0 } else { evaluationsWithoutImprovement += 1 }
        return improved
    }

    public var earlyStoppingReached: Bool {
        recipe.training.earlyStoppingPatience > 0 && evaluationsWithoutImprovement >= recipe.training.earlyStoppingPatience
    }

    public var finished: Bool {
        step >= totalSteps || (recipe.training.steps == 0 && stream.cursor.epoch >= recipe.training.epochs)
    }
}

extension Trainer {
    /// Dropout generators of every adapted layer, by module name (checkpoint state).
    var dropoutStates: [String: RandomGenerator] {
        adapter.layers.mapValues(\.dropoutRNG)
    }
}
