import Architectures
import Datasets
import Evaluation
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
    /// How every forward and backward of this run computes (from the recipe, once).
    public let execution: ExecutionOptions
    /// Rows and batches (from the recipe, with the tokenizer's padding id).
    public let batching: BatchingOptions
    public internal(set) var optimizer: AdamW
    public internal(set) var stream: BatchStream
    public internal(set) var step = 0
    public internal(set) var metrics = TrainingMetrics()
    public internal(set) var bestValidationLoss: Double?
    public internal(set) var evaluationsWithoutImprovement = 0
    public let totalSteps: Int
    let schedule: LearningRateSchedule
    var accumulator = GradientAccumulator()

    /// `padID` fills padding slots (the tokenizer's EOS, by convention).
    public init(model: DecoderModel, adapter: LoRAAdapter, recipe: Recipe, train: TokenizedDataset, validation: TokenizedDataset?,
                padID: Int32 = 0) {
        self.model = model
        self.adapter = adapter
        self.recipe = recipe
        self.validation = validation
        let t = recipe.training
        execution = recipe.execution
        batching = recipe.batching(padID: padID)
        optimizer = AdamW(learningRate: Float(t.learningRate), weightDecay: Float(t.weightDecay))
        stream = BatchStream(dataset: train, options: batching, seed: t.seed)
        if t.steps > 0 {
            totalSteps = t.steps
        } else {
            let batches = train.passShape(batching).batches
            totalSteps = max(1, (t.epochs * batches + t.gradientAccumulation - 1) / t.gradientAccumulation)
        }
        schedule = LearningRateSchedule(kind: t.schedule, peak: Float(t.learningRate), warmupSteps: t.warmupSteps,
                                        totalSteps: totalSteps, minRatio: Float(t.minLRRatio))
    }

    /// Mean loss of one batch under the current adapter (token-weighted over trained targets).
    func batchLoss(_ batch: Batch) throws(TrainingError) -> Tensor {
        do {
            return try model.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets, options: execution)
        } catch { throw .model(error) }
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
            let l = try batchLoss(batch)
            guard l.item.isFinite else { throw .nonFiniteLoss(step: step + 1) }
            loss += Double(l.item) * Double(weight)
            accumulator.add(parameters, from: l.scaled(by: weight).backward())
        }
        let norm = t.clipping.map { accumulator.clip(maxNorm: $0) } ?? accumulator.globalNorm
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

    /// The validation batches: the validation set in order, or its first `eval_batches`.
    public var validationBatches: [Batch] {
        guard let validation else { return [] }
        let batches = BatchStream(dataset: validation, options: batching, seed: 0, shuffle: false).allBatches()
        return recipe.training.evalBatches > 0 ? Array(batches.prefix(recipe.training.evalBatches)) : batches
    }

    /// Token-weighted mean loss over the validation batches (nil without validation data).
    public func validate() throws(TrainingError) -> Double? {
        guard validation != nil else { return nil }
        adapter.setTraining(false)
        defer { adapter.setTraining(true) }
        do { return try LossMeasurement.measure(model, batches: validationBatches, options: execution)?.loss } catch { throw .model(error) }
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

    /// Everything needed to continue this run exactly, as of now.
    public var state: TrainerState {
        var moments: [String: (m: [Float], v: [Float])] = [:]
        for (name, (m, v)) in optimizer.moments {
            moments[name] = (Array(UnsafeBufferPointer(start: m.base, count: m.count)), Array(UnsafeBufferPointer(start: v.base, count: v.count)))
        }
        return TrainerState(step: step, optimizerStep: optimizer.step, moments: moments, dataCursor: stream.cursor,
                            dropoutGenerators: adapter.layers.mapValues(\.dropoutRNG), bestValidationLoss: bestValidationLoss,
                            evaluationsWithoutImprovement: evaluationsWithoutImprovement)
    }

    /// This run as a checkpoint over `base`.
    public func checkpoint(base: BaseIdentity) -> Checkpoint {
        Checkpoint(recipe: recipe, base: base, adapter: adapter.parameters.reduce(into: [:]) { $0[$1.name] = StoredTensor($1.tensor) },
                   state: state, metrics: metrics)
    }

    /// Continues the run `checkpoint` saved (built from the same recipe and base): adapter,
    /// moments, step, data cursor, dropout generators, metrics.
    public func restore(_ checkpoint: Checkpoint, source: String) throws(TrainingError) {
        guard let saved = checkpoint.state else {
            throw .checkpoint("\(source): holds an adapter but no training state (optimizer, step, data cursor); it cannot be resumed")
        }
        do { try adapter.load(checkpoint.adapterTensors, source: source) } catch { throw .checkpoint(error.description) }
        var moments: [String: (m: TensorStorage, v: TensorStorage)] = [:]
        func storage(_ values: [Float]) -> TensorStorage {
            let s = TensorStorage(count: values.count)
            for (i, x) in values.enumerated() { s.base[i] = x }
            return s
        }
        for (name, tensor) in adapter.parameters {
            guard let (m, v) = saved.moments[name] else { continue }
            guard m.count == tensor.count, v.count == tensor.count else {
                throw .checkpoint("\(source): optimizer moments of '\(name)' do not match its shape \(tensor.shape)")
            }
            moments[name] = (storage(m), storage(v))
        }
        optimizer.restore(step: saved.optimizerStep, moments: moments)
        step = saved.step
        stream = BatchStream(dataset: stream.dataset, options: stream.options, seed: stream.seed, cursor: saved.dataCursor)
        for (module, layer) in adapter.layers {
            if let generator = saved.dropoutGenerators[module] { layer.dropoutRNG = generator }
        }
        bestValidationLoss = saved.bestValidationLoss
        evaluationsWithoutImprovement = saved.evaluationsWithoutImprovement
        metrics = checkpoint.metrics
    }
}
