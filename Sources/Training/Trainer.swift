import Architectures
import Datasets
import Evaluation
import Foundation
import LoRA
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
    /// How the step was shared and summed over ranks (nil for one process).
    public var parallel: ParallelStepReport?
}

/// A data-parallel step as this rank saw it.
public struct ParallelStepReport: Sendable, Equatable {
    public var rank: Int, ranks: Int
    /// Rows of the global batch this rank computed.
    public var rows: Int
    /// Real tokens in this rank's rows.
    public var realTokens: Int
    /// The one all-reduce of the step: bytes summed (gradients and the step's extras) and the
    /// seconds this rank spent in it (waiting for slower ranks included).
    public var allReduceBytes: Int
    public var allReduceSeconds: Double
    /// Seconds of forward and backward on this rank before the all-reduce.
    public var computeSeconds: Double
    /// Some rank's caller asked to stop (the run then saves and stops on every rank together).
    public var stopRequested: Bool
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int)
    case model(ModelError)
    case checkpoint(String)
    /// The ranks of a data-parallel run failed to communicate or disagree.
    case parallel(ReducerError)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step):
            return "the loss became NaN or infinite at step \(step); lower training.learning_rate or set training.max_grad_norm (the last good checkpoint is kept)"
        case .model(let e): return e.description
        case .checkpoint(let why): return why
        case .parallel(let e): return e.description
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
/// moments, step, data cursor, dropout roots) is state a checkpoint saves and restores, so a
/// resumed run continues bit for bit.
///
/// Data-parallel: with a `reducer` of N ranks, every rank runs this same loop over the same
/// global data order; each computes its ``BatchShare`` of the step's rows, the gradients (and
/// the step's loss, token count and stop vote) are summed with one all-reduce of a flat
/// buffer, and every rank takes the same clipped AdamW step. The loss of each piece is
/// weighted by its share of the step's trained tokens, exactly as one process weights its
/// micro-batches, so N ranks compute the step one process computes.
///
/// Dropout: the masks of micro-batch m of step s come from each module's root generator
/// derived with (s, m) (``RandomGenerator/derived(_:_:)``), not from a generator advanced call
/// after call, so a rank computing only micro-batch m, or rows of it, draws the masks one
/// process draws for them.
public final class Trainer {
    public let model: DecoderModel
    public let adapter: LoRAAdapter
    public let recipe: Recipe
    public let validation: TokenizedDataset?
    /// How every forward and backward of this run computes (from the recipe, once).
    public let execution: ExecutionOptions
    /// Rows and batches (from the recipe, with the tokenizer's padding id).
    public let batching: BatchingOptions
    /// The ranks of the run (one process: ``SingleProcess``).
    public let reducer: any GradientReducer
    /// The rows of each step this rank computes.
    public let share: BatchShare
    public internal(set) var optimizer: AdamW
    public internal(set) var stream: BatchStream
    public internal(set) var step = 0
    public internal(set) var metrics = TrainingMetrics()
    public internal(set) var bestValidationLoss: Double?
    public internal(set) var evaluationsWithoutImprovement = 0
    public let totalSteps: Int
    let schedule: LearningRateSchedule
    /// Gradients, then the step's extras: [loss share, trained tokens, stop votes].
    var accumulator = GradientAccumulator(extraSlots: 3)
    /// Each adapted module's dropout root (saved in checkpoints as its generator).
    var dropoutRoots: [String: RandomGenerator]
    /// Set by ``requestStop()``: voted in the next step's all-reduce.
    var stopVote = false

    /// `padID` fills padding slots (the tokenizer's EOS, by convention); `reducer` connects
    /// the ranks of a data-parallel run.
    public init(model: DecoderModel, adapter: LoRAAdapter, recipe: Recipe, train: TokenizedDataset, validation: TokenizedDataset?,
                padID: Int32 = 0, reducer: any GradientReducer = SingleProcess()) {
        self.model = model
        self.adapter = adapter
        self.recipe = recipe
        self.validation = validation
        self.reducer = reducer
        let t = recipe.training
        execution = recipe.execution
        batching = recipe.batching(padID: padID)
        share = BatchShare(rank: reducer.rank, ranks: reducer.ranks, microBatches: t.gradientAccumulation, rowsPerMicroBatch: t.batchSize)
        optimizer = AdamW(learningRate: Float(t.learningRate), weightDecay: Float(t.weightDecay))
        stream = BatchStream(dataset: train, options: batching, seed: t.seed)
        dropoutRoots = adapter.layers.mapValues(\.dropoutRNG)
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

    /// Bytes of the step's all-reduce (gradients and extras, Float32).
    public var allReduceBytes: Int {
        (adapter.parameters.reduce(0) { $0 + $1.tensor.count } + accumulator.extraSlots) * MemoryLayout<Float>.stride
    }

    /// Asks every rank to stop after the next step (the vote travels in its all-reduce).
    public func requestStop() { stopVote = true }

    /// One optimizer step over the step's global batch (`gradientAccumulation` micro-batches),
    /// this rank computing its share.
    public func trainStep() throws(TrainingError) -> StepReport {
        let start = Date()
        let local = try accumulateShare()
        let computeSeconds = Date().timeIntervalSince(start)
        var allReduceSeconds = 0.0
        if reducer.ranks > 1, let flat = accumulator.flat {
            let t0 = Date()
            do { try reducer.allReduceSum(flat.base, count: flat.count, label: "gradients of step \(step + 1)") } catch { throw .parallel(error) }
            allReduceSeconds = Date().timeIntervalSince(t0)
        }
        return try applyStep(local, start: start, computeSeconds: computeSeconds, allReduceSeconds: allReduceSeconds)
    }

    /// What a rank knows of its step before the sums: the global batch's counts, its own part.
    struct LocalStep {
        var trainedTokens: Int, realTokens: Int
        var rows: Int, localRealTokens: Int
        /// This rank's share of the step's loss (Σ weight·loss over its pieces), in Double.
        var loss: Double
    }

    /// The step's global batch drawn from the stream (every rank draws all of it), this rank's
    /// pieces computed forward and backward into the accumulator, the extras filled in.
    func accumulateShare() throws(TrainingError) -> LocalStep {
        let t = recipe.training
        adapter.setTraining(true)
        let batches = (0..<t.gradientAccumulation).map { _ in stream.next() }
        let trained = batches.reduce(0) { $0 + $1.trainedTokens }
        let parameters = adapter.parameters
        accumulator.prepare(parameters)
        var loss = 0.0, localTrained = 0, localReal = 0
        for part in share.parts {
            let whole = batches[part.microBatch]
            let batch = part.rows == 0..<batching.batchSize ? whole : whole.rows(part.rows)
            localReal += batch.realTokens
            guard batch.trainedTokens > 0 else { continue }
            localTrained += batch.trainedTokens
            seedDropout(step: step, microBatch: part.microBatch, firstToken: part.rows.lowerBound * batching.maxSeqLen)
            let weight = Float(batch.trainedTokens) / Float(max(trained, 1))
            let l = try batchLoss(batch)
            // Not thrown here: every rank must reach the all-reduce, and the NaN in the summed
            // loss stops them all at the same step.
            guard l.item.isFinite else { loss = .nan; continue }
            loss += Double(l.item) * Double(weight)
            accumulator.add(parameters, from: l.scaled(by: weight).backward())
        }
        let extras = accumulator.extras
        extras[0] = Float(loss)
        extras[1] = Float(localTrained)
        extras[2] = stopVote ? 1 : 0
        return LocalStep(trainedTokens: trained, realTokens: batches.reduce(0) { $0 + $1.realTokens }, rows: share.rowCount,
                         localRealTokens: localReal, loss: loss)
    }

    /// Points every adapted module's dropout at micro-batch `microBatch` of step `step`, its
    /// input starting at token `firstToken` of that micro-batch.
    func seedDropout(step: Int, microBatch: Int, firstToken: Int) {
        for (module, layer) in adapter.layers {
            guard let root = dropoutRoots[module] else { continue }
            layer.dropoutRNG = root.derived(UInt64(step), UInt64(microBatch))
            layer.dropoutOffset = firstToken
        }
    }

    /// The step from the summed accumulator (summed over ranks, or this process's own): loss,
    /// clipping, AdamW, metrics.
    func applyStep(_ local: LocalStep, start: Date, computeSeconds: Double, allReduceSeconds: Double) throws(TrainingError) -> StepReport {
        let t = recipe.training
        let extras = accumulator.extras
        let parallel = reducer.ranks > 1
        // One process keeps its loss in Double; ranks add theirs as Float in the all-reduce.
        let loss = parallel ? Double(extras[0]) : local.loss
        guard loss.isFinite else { throw .nonFiniteLoss(step: step + 1) }
        if parallel, local.trainedTokens < 1 << 24, Int(extras[1]) != local.trainedTokens {
            throw .parallel(.diverged(rank: reducer.rank, what: "the ranks disagree on the data of step \(step + 1): its batch has \(local.trainedTokens) trained tokens here but the ranks' shares add up to \(Int(extras[1])); every rank must read the same data with the same recipe"))
        }
        let stopRequested = extras[2] > 0
        let parameters = adapter.parameters
        let norm = t.clipping.map { accumulator.clip(maxNorm: $0) } ?? accumulator.globalNorm
        guard norm.isFinite else { throw .nonFiniteLoss(step: step + 1) }
        let rate = schedule.rate(afterSteps: step)
        optimizer.learningRate = rate
        let accumulated = accumulator
        optimizer.update(parameters) { name, _ in accumulated.gradient(name).flatMap { UnsafePointer($0.baseAddress) } }
        accumulator.reset()
        stopVote = false
        step += 1

        let seconds = Date().timeIntervalSince(start)
        let real = local.realTokens
        metrics.steps.append(step)
        metrics.losses.append(loss)
        metrics.learningRates.append(Double(rate))
        metrics.tokensPerSecond.append(Double(real) / max(seconds, 1e-9))
        let recent = metrics.tokensPerSecond.suffix(10)
        let meanSeconds = Double(real) / max(recent.reduce(0, +) / Double(recent.count), 1e-9)
        let report = parallel
            ? ParallelStepReport(rank: reducer.rank, ranks: reducer.ranks, rows: local.rows, realTokens: local.localRealTokens,
                                 allReduceBytes: (accumulator.flat?.count ?? 0) * MemoryLayout<Float>.stride,
                                 allReduceSeconds: allReduceSeconds, computeSeconds: computeSeconds, stopRequested: stopRequested)
            : nil
        return StepReport(step: step, totalSteps: totalSteps, loss: loss, learningRate: rate, gradientNorm: norm,
                          trainedTokens: local.trainedTokens, realTokens: real, tokensPerSecond: Double(real) / max(seconds, 1e-9),
                          elapsed: seconds, eta: meanSeconds * Double(totalSteps - step), epoch: stream.cursor.epoch,
                          peakResidentBytes: ProcessMemory.peakResidentBytes, parallel: report)
    }

    /// The validation batches: the validation set in order, or its first `eval_batches`.
    public var validationBatches: [Batch] {
        guard let validation else { return [] }
        let batches = BatchStream(dataset: validation, options: batching, seed: 0, shuffle: false).allBatches()
        return recipe.training.evalBatches > 0 ? Array(batches.prefix(recipe.training.evalBatches)) : batches
    }

    /// Token-weighted mean loss over the validation batches (nil without validation data).
    /// Over N ranks each measures every Nth batch and the sums are reduced; every rank gets
    /// rank 0's value.
    public func validate() throws(TrainingError) -> Double? {
        guard validation != nil else { return nil }
        adapter.setTraining(false)
        defer { adapter.setTraining(true) }
        let all = validationBatches
        guard reducer.ranks > 1 else {
            do { return try LossMeasurement.measure(model, batches: all, options: execution)?.loss } catch { throw .model(error) }
        }
        let mine = all.indices.filter { $0 % reducer.ranks == reducer.rank }.map { all[$0] }
        let measured: LossMeasurement?
        do { measured = try LossMeasurement.measure(model, batches: mine, options: execution) } catch { throw .model(error) }
        var sums = [measured.map { $0.loss * Double($0.trainedTokens) } ?? 0, Double(measured?.trainedTokens ?? 0)]
        do {
            try reducer.allReduceSum(&sums, label: "validation at step \(step)")
            guard sums[1] > 0 else { return nil }
            // Keep-best and early stopping decide on this value on every rank: make it one value.
            var bytes = withUnsafeBytes(of: (sums[0] / sums[1]).bitPattern.littleEndian) { Array($0) }
            try reducer.broadcast(&bytes, from: 0, label: "validation loss at step \(step)")
            return Double(bitPattern: UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        } catch { throw .parallel(error) }
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

    /// Checks that every rank holds rank 0's adapter (they take identical steps from identical
    /// sums; this catches a rank that did not). Free for one process.
    public func verifyRanksAgree() throws(TrainingError) {
        guard reducer.ranks > 1 else { return }
        var digest: UInt64 = 0xCBF2_9CE4_8422_2325
        for (_, p) in adapter.parameters {
            p.withUnsafeBufferPointer { values in
                for x in values { digest = (digest ^ UInt64(x.bitPattern)) &* 0x0000_0100_0000_01B3 }
            }
        }
        var bytes = withUnsafeBytes(of: digest.littleEndian) { Array($0) }
        do { try reducer.broadcast(&bytes, from: 0, label: "adapter digest at step \(step)") } catch { throw .parallel(error) }
        let leader = UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        guard leader == digest else {
            throw .parallel(.diverged(rank: reducer.rank, what: "its adapter differs from rank 0's after step \(step) (the ranks no longer take the same steps)"))
        }
    }

    /// Everything needed to continue this run exactly, as of now (the same on every rank).
    public var state: TrainerState {
        var moments: [String: (m: [Float], v: [Float])] = [:]
        for (name, (m, v)) in optimizer.moments {
            moments[name] = (Array(UnsafeBufferPointer(start: m.base, count: m.count)), Array(UnsafeBufferPointer(start: v.base, count: v.count)))
        }
        return TrainerState(step: step, optimizerStep: optimizer.step, moments: moments, dataCursor: stream.cursor,
                            dropoutGenerators: dropoutRoots, bestValidationLoss: bestValidationLoss,
                            evaluationsWithoutImprovement: evaluationsWithoutImprovement)
    }

    /// This run as a checkpoint over `base`.
    public func checkpoint(base: BaseIdentity) -> Checkpoint {
        Checkpoint(recipe: recipe, base: base, adapter: adapter.parameters.reduce(into: [:]) { $0[$1.name] = StoredTensor($1.tensor) },
                   state: state, metrics: metrics)
    }

    /// Continues the run `checkpoint` saved (built from the same recipe and base, on any number
    /// of ranks): adapter, moments, step, data cursor, dropout roots, metrics.
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
            if let generator = saved.dropoutGenerators[module] {
                dropoutRoots[module] = generator
                layer.dropoutRNG = generator
            }
        }
        bestValidationLoss = saved.bestValidationLoss
        evaluationsWithoutImprovement = saved.evaluationsWithoutImprovement
        metrics = checkpoint.metrics
    }
}
