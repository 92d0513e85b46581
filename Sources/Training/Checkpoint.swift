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

/// A tensor's shape and values, as stored (adapter weights, optimizer moments).
public struct StoredTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public init(_ tensor: Tensor) { self.init(shape: tensor.shape, values: tensor.scalars) }

    public var tensor: Tensor { Tensor(shape: shape, scalars: values) }
}

/// What decides a run's next step beyond the adapter itself: restoring it into a trainer built
/// from the same recipe and base continues the run bit for bit.
public struct TrainerState: Sendable, Equatable {
    /// Optimizer steps taken.
    public var step: Int
    /// AdamW's own step count (bias correction) and first/second moments by PEFT tensor name.
    public var optimizerStep: Int
    public var moments: [String: (m: [Float], v: [Float])]
    /// The next batch of the data order (global: the same whatever the number of processes).
    public var dataCursor: DataCursor
    /// Each adapted module's dropout root: micro-batch m of step s draws its masks from
    /// `root.derived(s, m)`, so the roots do not move while training.
    public var dropoutGenerators: [String: RandomGenerator]
    public var bestValidationLoss: Double?
    public var evaluationsWithoutImprovement: Int

    public static func == (a: Self, b: Self) -> Bool {
        a.step == b.step && a.optimizerStep == b.optimizerStep && a.dataCursor == b.dataCursor
            && a.dropoutGenerators == b.dropoutGenerators && a.evaluationsWithoutImprovement == b.evaluationsWithoutImprovement
            && a.bestValidationLoss == b.bestValidationLoss && a.moments.count == b.moments.count
            && a.moments.allSatisfy { name, mv in b.moments[name].map { $0.m == mv.m && $0.v == mv.v } ?? false }
    }
}

/// Failures reading or writing a checkpoint, naming the file and what is wrong with it.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case invalid(path: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read the checkpoint (\(reason))"
        case .invalid(let path, let reason): return "\(path): \(reason)"
        case .unwritable(let path, let reason): return "\(path): cannot write the checkpoint (\(reason))"
        }
    }
}

/// One saved training run, as a value: the recipe it ran, the base it trained over, the
/// adapter, the trainer's state and the metrics so far. Read and written here only (one HDF5
/// file per save; `h5dump` reads it):
///
///     adapter/<PEFT tensor name>        Float32 [r, in] / [out, r]
///     optimizer/m/<name>, optimizer/v/<name>   AdamW moments
///     optimizer/step, state/step        Int64
///     state/data_cursor                 Int64 [epoch, next batch of that epoch's packing plan]
///     state/dropout_rng/<module>        Int64 [4] (dropout root generator state, bit patterns)
///     state/best_validation             Float32 [1] (NaN: none yet), state/evals_without_improvement
///     metrics/{step,loss,lr,tokens_per_second,validation_step,validation_loss}
///     recipe                            the effective recipe (YAML)
///     base/{name,path,sha256,license}   the base model's identity
///
/// A checkpoint may come from a stranger: every name, shape and count is checked when it is
/// read, before anything uses it.
public struct Checkpoint: Sendable, Equatable {
    public static let fileExtension = "h5"

    public var recipe: Recipe
    public var base: BaseIdentity
    /// Adapter tensors by PEFT name (`base_model.model.<module>.lora_{A,B}.weight`).
    public var adapter: [String: StoredTensor]
    /// Absent in an adapter-only archive (it can be applied, merged and exported, not resumed).
    public var state: TrainerState?
    public var metrics: TrainingMetrics

    public init(recipe: Recipe, base: BaseIdentity, adapter: [String: StoredTensor], state: TrainerState?, metrics: TrainingMetrics) {
        self.recipe = recipe
        self.base = base
        self.adapter = adapter
        self.state = state
        self.metrics = metrics
    }

    /// The adapter tensors as engine tensors, by PEFT name.
    public var adapterTensors: [String: Tensor] { adapter.mapValues(\.tensor) }

    /// Reads and checks the checkpoint at `path`.
    public init(contentsOf path: String) throws(CheckpointError) {
        let archive: HDF5Archive
        do { archive = try HDF5Archive(contentsOf: path) } catch { throw .unreadable(path: path, reason: error.description) }
        try self.init(archive: archive, path: path)
    }

    /// Writes the checkpoint to `path` whole or not at all (a temporary name, synced, renamed).
    public func write(to path: String) throws(CheckpointError) {
        do { try archive.write(to: path) } catch { throw .unwritable(path: path, reason: error.description) }
    }

    /// The HDF5 form (the schema above).
    var archive: HDF5Archive {
        var a = HDF5Archive()
        for (name, t) in adapter { a.floatArrays["adapter/" + name] = .init(shape: t.shape, values: t.values) }
        if let state {
            for (name, (m, v)) in state.moments {
                let shape = adapter[name]?.shape ?? [m.count]
                a.floatArrays["optimizer/m/" + name] = .init(shape: shape, values: m)
                a.floatArrays["optimizer/v/" + name] = .init(shape: shape, values: v)
            }
            a.intArrays["optimizer/step"] = [Int64(state.optimizerStep)]
            a.intArrays["state/step"] = [Int64(state.step)]
            a.intArrays["state/data_cursor"] = [Int64(state.dataCursor.epoch), Int64(state.dataCursor.index)]
            for (module, rng) in state.dropoutGenerators {
                let s = rng.state
                a.intArrays["state/dropout_rng/" + module] = [s.0, s.1, s.2, s.3].map { Int64(bitPattern: $0) }
            }
            a.floatArrays["state/best_validation"] = .init(shape: [1], values: [Float(state.bestValidationLoss ?? .nan)])
            a.intArrays["state/evals_without_improvement"] = [Int64(state.evaluationsWithoutImprovement)]
        }
        let m = metrics
        a.intArrays["metrics/step"] = m.steps.map(Int64.init)
        a.floatArrays["metrics/loss"] = .init(shape: [m.losses.count], values: m.losses.map(Float.init))
        a.floatArrays["metrics/lr"] = .init(shape: [m.learningRates.count], values: m.learningRates.map(Float.init))
        a.floatArrays["metrics/tokens_per_second"] = .init(shape: [m.tokensPerSecond.count], values: m.tokensPerSecond.map(Float.init))
        a.intArrays["metrics/validation_step"] = m.validationSteps.map(Int64.init)
        a.floatArrays["metrics/validation_loss"] = .init(shape: [m.validationLosses.count], values: m.validationLosses.map(Float.init))
        a.strings["recipe"] = recipe.yaml
        a.strings["base/name"] = base.name
        a.strings["base/path"] = base.path
        a.strings["base/sha256"] = base.sha256
        a.strings["base/license"] = base.license
        return a
    }

    /// The largest adapter dimension a checkpoint may claim (far beyond any model's width).
    static let maxDimension = 1 << 20

    /// Reads the schema above out of `a`, checking every name, shape and count first.
    init(archive a: HDF5Archive, path: String) throws(CheckpointError) {
        func invalid(_ reason: String) -> CheckpointError { .invalid(path: path, reason: reason) }
        guard let yaml = a.strings["recipe"] else {
            throw invalid("not a Lorikeet checkpoint (no recipe); a PEFT adapter is a folder with adapter_config.json")
        }
        try Self.checkNames(a, path: path)
        guard yaml.utf8.count <= Self.maxRecipeBytes else { throw invalid("its recipe is \(yaml.utf8.count) bytes; a recipe is a few kilobytes (at most \(Self.maxRecipeBytes))") }
        for key in Self.baseKeys {
            if let s = a.strings["base/" + key], s.utf8.count > Self.maxBaseStringBytes {
                throw invalid("'base/\(key)' is \(s.utf8.count) bytes long (at most \(Self.maxBaseStringBytes))")
            }
        }
        do { recipe = try Recipe(yaml: yaml, source: path + " (recipe)") } catch { throw invalid(error.description) }
        base = BaseIdentity(name: a.strings["base/name"] ?? "unknown", path: a.strings["base/path"] ?? "",
                            sha256: a.strings["base/sha256"] ?? "", license: a.strings["base/license"] ?? "unknown")

        var adapter: [String: StoredTensor] = [:]
        for (key, array) in a.floatArrays where key.hasPrefix("adapter/") {
            let name = String(key.dropFirst("adapter/".count))
            guard Self.isAdapterTensorName(name) else {
                throw invalid("adapter tensor '\(name)' is not named as PEFT names LoRA weights (base_model.model.<module>.lora_A.weight / lora_B.weight)")
            }
            guard array.shape.count == 2, array.shape.allSatisfy({ $0 > 0 && $0 <= Self.maxDimension }),
                  array.shape[0] * array.shape[1] == array.values.count else {
                throw invalid("adapter tensor '\(name)' has shape \(array.shape) for \(array.values.count) values; expected a [rows, columns] matrix")
            }
            guard array.values.allSatisfy(\.isFinite) else { throw invalid("adapter tensor '\(name)' holds NaN or infinite values") }
            adapter[name] = StoredTensor(shape: array.shape, values: array.values)
        }
        guard !adapter.isEmpty else { throw invalid("the checkpoint holds no adapter tensors") }
        for name in adapter.keys where name.hasSuffix(".lora_A.weight") {
            let partner = String(name.dropLast(".lora_A.weight".count)) + ".lora_B.weight"
            guard let a = adapter[name], let b = adapter[partner] else { throw invalid("'\(name)' has no matching lora_B tensor") }
            guard a.shape[0] == b.shape[1] else {
                throw invalid("'\(name)' has rank \(a.shape[0]) but its lora_B \(b.shape) has \(b.shape[1]) columns")
            }
            guard a.shape[0] == recipe.lora.rank else {
                throw invalid("'\(name)' has rank \(a.shape[0]) but the checkpoint's recipe says lora.rank \(recipe.lora.rank)")
            }
        }
        for name in adapter.keys where name.hasSuffix(".lora_B.weight") {
            guard adapter[String(name.dropLast(".lora_B.weight".count)) + ".lora_A.weight"] != nil else { throw invalid("'\(name)' has no matching lora_A tensor") }
        }
        let config = recipe.lora.config
        for name in adapter.keys where !config.targets(Self.moduleName(name)) {
            throw invalid("adapter tensor '\(name)' is for a module the recipe's lora.targets and lora.layers do not select")
        }
        self.adapter = adapter

        let m = Self.metrics(a)
        guard m.losses.count == m.steps.count, m.learningRates.count == m.steps.count, m.tokensPerSecond.count == m.steps.count,
              m.validationLosses.count == m.validationSteps.count else {
            throw invalid("its metrics arrays have different lengths (steps \(m.steps.count), losses \(m.losses.count), validation steps \(m.validationSteps.count), losses \(m.validationLosses.count))")
        }
        metrics = m

        guard let step = a.intArrays["state/step"]?.first else { state = nil; return }
        guard let optimizerStep = a.intArrays["optimizer/step"]?.first, optimizerStep >= 0, step >= 0,
              let cursor = a.intArrays["state/data_cursor"], cursor.count == 2, cursor[0] >= 0, cursor[1] >= 0 else {
            throw invalid("incomplete training state (optimizer/step, state/step and state/data_cursor must be non-negative)")
        }
        // Far beyond any run, and small enough that step arithmetic can never overflow.
        for (key, values) in [("state/step", [step]), ("optimizer/step", [optimizerStep]), ("state/data_cursor", cursor),
                              ("state/evals_without_improvement", a.intArrays["state/evals_without_improvement"] ?? [])] {
            guard values.count <= 2, values.allSatisfy({ $0 >= 0 && $0 <= Self.maxCount }) else {
                throw invalid("'\(key)' holds \(values.prefix(4)); expected non-negative counts up to \(Self.maxCount)")
            }
        }
        if let best = a.floatArrays["state/best_validation"], best.shape != [1] {
            throw invalid("'state/best_validation' has shape \(best.shape); expected [1]")
        }
        var moments: [String: (m: [Float], v: [Float])] = [:]
        for (name, tensor) in adapter {
            let m = a.floatArrays["optimizer/m/" + name], v = a.floatArrays["optimizer/v/" + name]
            guard let m, let v else {
                if m == nil && v == nil { continue }
                throw invalid("optimizer moments of '\(name)' are incomplete")
            }
            guard m.shape == tensor.shape, v.shape == tensor.shape, m.values.count == tensor.values.count, v.values.count == tensor.values.count else {
                throw invalid("optimizer moments of '\(name)' (\(m.shape), \(v.shape)) do not match its shape \(tensor.shape)")
            }
            guard m.values.allSatisfy(\.isFinite), v.values.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw invalid("optimizer moments of '\(name)' hold NaN, infinite or negative second-moment values")
            }
            moments[name] = (m.values, v.values)
        }
        var generators: [String: RandomGenerator] = [:]
        for (key, s) in a.intArrays where key.hasPrefix("state/dropout_rng/") {
            guard s.count == 4 else { throw invalid("'\(key)' holds \(s.count) values; a generator state is 4") }
            let module = String(key.dropFirst("state/dropout_rng/".count))
            guard adapter.keys.contains(where: { Self.moduleName($0) == module }) else {
                throw invalid("'\(key)' is the dropout generator of '\(module)', which has no adapter tensors")
            }
            generators[String(key.dropFirst("state/dropout_rng/".count))] = RandomGenerator(
                state: (UInt64(bitPattern: s[0]), UInt64(bitPattern: s[1]), UInt64(bitPattern: s[2]), UInt64(bitPattern: s[3])))
        }
        let best = a.floatArrays["state/best_validation"]?.values.first.flatMap { $0.isNaN ? nil : Double($0) }
        state = TrainerState(step: Int(step), optimizerStep: Int(optimizerStep), moments: moments,
                             dataCursor: DataCursor(epoch: Int(cursor[0]), index: Int(cursor[1])), dropoutGenerators: generators,
                             bestValidationLoss: best, evaluationsWithoutImprovement: Int(max(0, a.intArrays["state/evals_without_improvement"]?.first ?? 0)))
    }

    static func metrics(_ a: HDF5Archive) -> TrainingMetrics {
        var m = TrainingMetrics()
        m.steps = (a.intArrays["metrics/step"] ?? []).map { Int($0) }
        m.losses = (a.floatArrays["metrics/loss"]?.values ?? []).map(Double.init)
        m.learningRates = (a.floatArrays["metrics/lr"]?.values ?? []).map(Double.init)
        m.tokensPerSecond = (a.floatArrays["metrics/tokens_per_second"]?.values ?? []).map(Double.init)
        m.validationSteps = (a.intArrays["metrics/validation_step"] ?? []).map { Int($0) }
        m.validationLosses = (a.floatArrays["metrics/validation_loss"]?.values ?? []).map(Double.init)
        return m
    }

    /// Bounds on what a stranger's file may claim: a recipe is a few kilobytes, a base's name,
    /// path, hash and license are short, a step or data position is far below 2^40.
    static let maxRecipeBytes = 1 << 20
    static let maxBaseStringBytes = 1 << 14
    static let maxCount: Int64 = 1 << 40
    static let baseKeys = ["name", "path", "sha256", "license"]

    /// Every dataset must be one the schema above names, in the kind (float, integer, string) it
    /// is written as: anything else is a file from another tool or a tampered one.
    static func checkNames(_ a: HDF5Archive, path: String) throws(CheckpointError) {
        let adapterNames = Set(a.floatArrays.keys.filter { $0.hasPrefix("adapter/") }.map { String($0.dropFirst("adapter/".count)) })
        let floats: Set<String> = ["state/best_validation", "metrics/loss", "metrics/lr", "metrics/tokens_per_second", "metrics/validation_loss"]
        let ints: Set<String> = ["optimizer/step", "state/step", "state/data_cursor", "state/evals_without_improvement", "metrics/step", "metrics/validation_step"]
        let strings = Set(["recipe"] + baseKeys.map { "base/" + $0 })
        func fail(_ name: String, _ kind: String) -> CheckpointError {
            .invalid(path: path, reason: "unknown \(kind) dataset '\(name.prefix(200))' (not part of a Lorikeet checkpoint)")
        }
        for name in a.floatArrays.keys where !name.hasPrefix("adapter/") && !floats.contains(name) {
            guard let rest = ["optimizer/m/", "optimizer/v/"].first(where: name.hasPrefix).map({ String(name.dropFirst($0.count)) }) else { throw fail(name, "Float32") }
            guard adapterNames.contains(rest) else {
                throw .invalid(path: path, reason: "optimizer moments '\(name.prefix(200))' belong to no adapter tensor")
            }
        }
        for name in a.intArrays.keys where !ints.contains(name) && !name.hasPrefix("state/dropout_rng/") { throw fail(name, "Int64") }
        for name in a.strings.keys where !strings.contains(name) { throw fail(name, "string") }
    }

    /// The module path of a PEFT tensor name (`base_model.model.<module>.lora_A.weight`).
    static func moduleName(_ name: String) -> String {
        let prefix = "base_model.model."
        guard name.hasPrefix(prefix) else { return name }
        return String(name.dropFirst(prefix.count).dropLast(".lora_A.weight".count))
    }

    /// `base_model.model.<module path>.lora_A.weight` or `…lora_B.weight`, the module path made
    /// of identifier-like parts.
    static func isAdapterTensorName(_ name: String) -> Bool {
        let prefix = "base_model.model.", suffixes = [".lora_A.weight", ".lora_B.weight"]
        guard name.hasPrefix(prefix), let suffix = suffixes.first(where: name.hasSuffix) else { return false }
        let module = name.dropFirst(prefix.count).dropLast(suffix.count)
        let parts = module.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.count <= 16 && module.count <= 256 && parts.allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
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

    /// Saves `checkpoint` as this step's file and prunes to the newest `keepLast`.
    public func save(_ checkpoint: Checkpoint, step: Int, keepLast: Int) throws(CheckpointError) {
        try save(archive: checkpoint.archive, step: step, keepLast: keepLast)
    }

    /// The same for an archive as written (tests pad one to make saves slow).
    func save(archive: HDF5Archive, step: Int, keepLast: Int) throws(CheckpointError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch { throw .unwritable(path: path, reason: "cannot create the run folder: \(error.localizedDescription)") }
        // Partial files of a process killed mid-save are never complete: clear them first.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names where name.contains(".h5.partial-") { try? FileManager.default.removeItem(atPath: path + "/" + name) }
        do { try archive.write(to: stepFile(step)) } catch { throw .unwritable(path: stepFile(step), reason: error.description) }
        for old in stepFiles().dropLast(keepLast) { try? FileManager.default.removeItem(atPath: old) }
    }
}
