import Datasets
import Formats
import Foundation
import LoRA
import TensorCore

/// The base a run trained over: an adapter only fits the exact weights it was trained against.
public struct BaseIdentity: Sendable, Equatable {
    public var name: String, path: String, sha256: String, license: String
    public init(name: String, path: String, sha256: String, license: String) {
        self.name = name
        self.path = path
        self.sha256 = sha256
        self.license = license
    }
}

/// The HDF5 checkpoint schema (one file per save; `h5dump` reads it):
///
///     adapter/<PEFT tensor name>        Float32 [r, in] / [out, r]
///     optimizer/m/<name>, optimizer/v/<name>   AdamW moments
///     optimizer/step, state/step        Int64
///     state/data_cursor                 Int64 [epoch, next batch of that epoch's packing plan]
///     state/dropout_rng/<module>        Int64 [4] (generator state, bit patterns)
///     state/best_validation             Float32 [1] (NaN: none yet), state/evals_without_improvement
///     metrics/{step,loss,lr,tokens_per_second,validation_step,validation_loss}
///     recipe                            the effective recipe (YAML)
///     base/{name,path,sha256,license}   the base model's identity
public enum Checkpoint {
    public static let fileExtension = "h5"

    public static func archive(of trainer: Trainer, base: BaseIdentity) -> HDF5Archive {
        var a = HDF5Archive()
        for (name, tensor) in trainer.adapter.parameters {
            a.floatArrays["adapter/" + name] = .init(shape: tensor.shape, values: tensor.scalars)
            if let (m, v) = trainer.optimizer.moments[name] {
                a.floatArrays["optimizer/m/" + name] = .init(shape: tensor.shape, values: Array(UnsafeBufferPointer(start: m.base, count: m.count)))
                a.floatArrays["optimizer/v/" + name] = .init(shape: tensor.shape, values: Array(UnsafeBufferPointer(start: v.base, count: v.count)))
            }
        }
        a.intArrays["optimizer/step"] = [Int64(trainer.optimizer.step)]
        a.intArrays["state/step"] = [Int64(trainer.step)]
        a.intArrays["state/data_cursor"] = [Int64(trainer.stream.cursor.epoch), Int64(trainer.stream.cursor.index)]
        for (module, rng) in trainer.dropoutStates {
            let s = rng.state
            a.intArrays["state/dropout_rng/" + module] = [s.0, s.1, s.2, s.3].map { Int64(bitPattern: $0) }
        }
        a.floatArrays["state/best_validation"] = .init(shape: [1], values: [Float(trainer.bestValidationLoss ?? .nan)])
        a.intArrays["state/evals_without_improvement"] = [Int64(trainer.evaluationsWithoutImprovement)]
        let m = trainer.metrics
        a.intArrays["metrics/step"] = m.steps.map(Int64.init)
        a.floatArrays["metrics/loss"] = .init(shape: [m.losses.count], values: m.losses.map(Float.init))
        a.floatArrays["metrics/lr"] = .init(shape: [m.learningRates.count], values: m.learningRates.map(Float.init))
        a.floatArrays["metrics/tokens_per_second"] = .init(shape: [m.tokensPerSecond.count], values: m.tokensPerSecond.map(Float.init))
        a.intArrays["metrics/validation_step"] = m.validationSteps.map(Int64.init)
        a.floatArrays["metrics/validation_loss"] = .init(shape: [m.validationLosses.count], values: m.validationLosses.map(Float.init))
        a.strings["recipe"] = trainer.recipe.yaml
        a.strings["base/name"] = base.name
        a.strings["base/path"] = base.path
        a.strings["base/sha256"] = base.sha256
        a.strings["base/license"] = base.license
        return a
    }

    /// The adapter tensors of a checkpoint, by PEFT name.
    public static func adapterTensors(_ a: HDF5Archive) -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        for (key, array) in a.floatArrays where key.hasPrefix("adapter/") {
            tensors[String(key.dropFirst("adapter/".count))] = Tensor(shape: array.shape, scalars: array.values)
        }
        return tensors
    }

    /// Puts a checkpoint's state into `trainer` (built from the same recipe and base): adapter,
    /// moments, step, data cursor, dropout generators, metrics.
    public static func restore(_ a: HDF5Archive, into trainer: Trainer, source: String) throws(TrainingError) {
        var moments: [String: (m: TensorStorage, v: TensorStorage)] = [:]
        func storage(_ values: [Float]) -> TensorStorage {
            let s = TensorStorage(count: values.count)
            for (i, x) in values.enumerated() { s.base[i] = x }
            return s
        }
        do { try trainer.adapter.load(adapterTensors(a), source: source) } catch { throw .checkpoint(error.description) }
        for (name, tensor) in trainer.adapter.parameters {
            guard let m = a.floatArrays["optimizer/m/" + name], let v = a.floatArrays["optimizer/v/" + name] else { continue }
            guard m.values.count == tensor.count, v.values.count == tensor.count else {
                throw .checkpoint("\(source): optimizer moments of '\(name)' do not match its shape \(tensor.shape)")
            }
            moments[name] = (storage(m.values), storage(v.values))
        }
        guard let optimizerStep = a.intArrays["optimizer/step"]?.first, let step = a.intArrays["state/step"]?.first,
              let cursor = a.intArrays["state/data_cursor"], cursor.count == 2 else {
            throw .checkpoint("\(source): not a Lorikeet training checkpoint (no optimizer/step, state/step or state/data_cursor)")
        }
        trainer.optimizer.restore(step: Int(optimizerStep), moments: moments)
        trainer.step = Int(step)
        trainer.stream = BatchStream(dataset: trainer.stream.dataset, options: trainer.stream.options, seed: trainer.stream.seed,
                                     cursor: DataCursor(epoch: Int(cursor[0]), index: Int(cursor[1])))
        for (module, layer) in trainer.adapter.layers {
            guard let s = a.intArrays["state/dropout_rng/" + module], s.count == 4 else { continue }
            layer.dropoutRNG = RandomGenerator(state: (UInt64(bitPattern: s[0]), UInt64(bitPattern: s[1]), UInt64(bitPattern: s[2]), UInt64(bitPattern: s[3])))
        }
        if let best = a.floatArrays["state/best_validation"]?.values.first, !best.isNaN { trainer.bestValidationLoss = Double(best) }
        trainer.evaluationsWithoutImprovement = Int(a.intArrays["state/evals_without_improvement"]?.first ?? 0)
        var m = TrainingMetrics()
        m.steps = (a.intArrays["metrics/step"] ?? []).map(Int.init)
        m.losses = (a.floatArrays["metrics/loss"]?.values ?? []).map(Double.init)
        m.learningRates = (a.floatArrays["metrics/lr"]?.values ?? []).map(Double.init)
        m.tokensPerSecond = (a.floatArrays["metrics/tokens_per_second"]?.values ?? []).map(Double.init)
        m.validationSteps = (a.intArrays["metrics/validation_step"] ?? []).map(Int.init)
        m.validationLosses = (a.floatArrays["metrics/validation_loss"]?.values ?? []).map(Double.init)
        trainer.metrics = m
    }
}

/// A run's folder under `output.dir`: `step-000050.h5` files, `best.h5`, and `latest` resolved
/// to the highest step. Old step files beyond `keep_last` are removed after each save.
public struct RunDirectory: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    public func stepFile(_ step: Int) -> String { path + "/" + String(format: "step-%06d.h5", step) }
    public var bestFile: String { path + "/best.h5" }

    /// Step checkpoints, oldest first.
    public func stepFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".h5") }.sorted().map { path + "/" + $0 }
    }

    public var latest: String? { stepFiles().last }

    /// Saves `archive` as this step's checkpoint and prunes to the newest `keepLast`.
    public func save(_ archive: HDF5Archive, step: Int, keepLast: Int) throws(TrainingError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch { throw .checkpoint("\(path): cannot create the run folder (\(error.localizedDescription))") }
        // Partial files of a process killed mid-save are never complete: clear them first.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names where name.contains(".h5.partial-") { try? FileManager.default.removeItem(atPath: path + "/" + name) }
        do { try archive.write(to: stepFile(step)) } catch { throw .checkpoint(error.description) }
        for old in stepFiles().dropLast(keepLast) { try? FileManager.default.removeItem(atPath: old) }
    }
}
