import Datasets
import LoRA
import Architectures
import TensorCore

/// A training run's every setting, typed and checked, read from a `RecipeDocument`.
/// Defaults follow QLoRA/PEFT practice where they exist (r 16, alpha 32, all-linear, NF4,
/// cosine with warmup, gradient clipping at 1).
public struct Recipe: Sendable {
    public struct DataSettings: Sendable {
        /// A folder with train.jsonl (+ valid.jsonl, test.jsonl) or a single JSONL file.
        public var path: String
        /// nil: detect from the first record.
        public var format: DatasetFormat?
        public var fields: FieldNames
        public var trainOn: TrainOn
        public var batching: BatchingOptions
        /// Hold-out fraction when `path` is a single file.
        public var validFraction: Double
        /// Count and report bad records instead of stopping at the first.
        public var skipInvalid: Bool
    }

    public struct TrainingSettings: Sendable {
        /// Optimizer steps; 0 means `epochs` decides.
        public var steps: Int
        public var epochs: Int
        public var gradientAccumulation: Int
        public var learningRate: Float
        public var schedule: LearningRateSchedule.Kind
        public var warmupSteps: Int
        public var minLRRatio: Float
        public var weightDecay: Float
        /// nil: no clipping.
        public var maxGradNorm: Double?
        /// Validate every N steps (0: only at the end).
        public var evalEvery: Int
        /// Validation batches per evaluation (0: the whole validation set).
        public var evalBatches: Int
        /// Stop after this many evaluations without improvement (0: never).
        public var earlyStoppingPatience: Int
        public var seed: UInt64
        public var logEvery: Int
        /// Recompute each decoder layer in backward instead of keeping its activations
        /// (one more forward per step; activation memory drops from all layers to one).
        public var gradientCheckpointing: Bool
        /// With checkpointing, MiB of frozen-base products the layers keep from their first run
        /// so the recomputation skips those matmuls (faster, by that much more memory; 0: none).
        public var checkpointKeepMiB: Int
        /// What the frozen base's matmuls compute in (training and validation): `f32`, or
        /// `bf16` (inputs and decoded weights rounded to bf16, f32 accumulation; see ComputeDType).
        public var computeDType: ComputeDType
    }

    public struct OutputSettings: Sendable {
        public var directory: String
        /// The run's folder name under `directory` (empty: the recipe's file name).
        public var name: String
        public var saveEvery: Int
        public var keepLast: Int
    }

    public var model: String
    public var data: DataSettings
    public var lora: LoRAConfig
    public var base: BasePrecision
    public var training: TrainingSettings
    public var output: OutputSettings
    /// The effective recipe as YAML, saved in every checkpoint.
    public let yaml: String

    /// Every key with its default, in the order recipes list them.
    static let schema: [(String, RecipeValue)] = [
        ("model.path", .string("smollm2")),
        ("data.path", .string("data/foldoc")),
        ("data.format", .string("auto")),
        ("data.fields.text", .string("text")), ("data.fields.prompt", .string("prompt")), ("data.fields.completion", .string("completion")),
        ("data.fields.messages", .string("messages")), ("data.fields.tools", .string("tools")),
        ("data.fields.instruction", .string("instruction")), ("data.fields.input", .string("input")), ("data.fields.output", .string("output")),
        ("data.train_on", .string("assistant")),
        ("data.max_seq_len", .int(256)),
        ("data.packing", .bool(true)),
        ("data.over_long", .string("truncate")),
        ("data.valid_fraction", .double(0.05)),
        ("data.skip_invalid", .bool(false)),
        ("lora.rank", .int(16)),
        ("lora.alpha", .double(32)),
        ("lora.dropout", .double(0.05)),
        ("lora.rslora", .bool(false)),
        ("lora.targets", .string("all-linear")),
        ("lora.layers", .null),
        ("lora.init", .string("default")),
        ("lora.loftq_iter", .int(1)),
        ("quantization.base", .string("nf4")),
        ("training.steps", .int(150)),
        ("training.epochs", .int(0)),
        ("training.batch_size", .int(4)),
        ("training.grad_accumulation", .int(1)),
        ("training.gradient_checkpointing", .bool(true)),
        ("training.checkpoint_keep_mb", .int(0)),
        ("training.compute_dtype", .string("f32")),
        ("training.learning_rate", .double(2e-4)),
        ("training.schedule", .string("cosine")),
        ("training.warmup_steps", .int(10)),
        ("training.min_lr_ratio", .double(0.1)),
        ("training.weight_decay", .double(0)),
        ("training.max_grad_norm", .double(1)),
        ("training.eval_every", .int(50)),
        ("training.eval_batches", .int(0)),
        ("training.early_stopping_patience", .int(0)),
        ("training.seed", .int(42)),
        ("training.log_every", .int(10)),
        ("output.dir", .string("checkpoints")),
        ("output.name", .string("")),
        ("output.save_every", .int(50)),
        ("output.keep_last", .int(2)),
    ]
    static let defaults: [String: RecipeValue] = Dictionary(uniqueKeysWithValues: schema)
    static let order: [String: Int] = Dictionary(uniqueKeysWithValues: schema.enumerated().map { ($1.0, $0) })
    static func keyOrder(_ a: String, _ b: String) -> Bool { (order[a] ?? .max, a) < (order[b] ?? .max, b) }

    public init(_ document: RecipeDocument) throws(RecipeError) {
        let v = document.values
        func string(_ key: String) throws(RecipeError) -> String {
            switch v[key] {
            case .string(let s)?: return s
            case .int(let i)?: return String(i)
            case .double(let d)?: return String(d)
            case .bool(let b)?: return b ? "true" : "false"
            default: throw .invalidValue(key: key, value: "\(v[key] ?? .null)", expected: "a string")
            }
        }
        func int(_ key: String, min lower: Int = 0) throws(RecipeError) -> Int {
            guard case .int(let i)? = v[key], i >= lower else { throw .invalidValue(key: key, value: "\(v[key] ?? .null)", expected: "an integer ≥ \(lower)") }
            return i
        }
        func number(_ key: String, in range: ClosedRange<Double>) throws(RecipeError) -> Double {
            let d: Double
            switch v[key] {
            case .int(let i)?: d = Double(i)
            case .double(let x)?: d = x
            default: throw .invalidValue(key: key, value: "\(v[key] ?? .null)", expected: "a number in \(range)")
            }
            guard range.contains(d) else { throw .invalidValue(key: key, value: "\(d)", expected: "a number in \(range)") }
            return d
        }
        func bool(_ key: String) throws(RecipeError) -> Bool {
            guard case .bool(let b)? = v[key] else { throw .invalidValue(key: key, value: "\(v[key] ?? .null)", expected: "true or false") }
            return b
        }
        func choice<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws(RecipeError) -> E where E.RawValue == String {
            let s = try string(key)
            guard let e = E(rawValue: s) else {
                throw .invalidValue(key: key, value: "'\(s)'", expected: "one of " + E.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return e
        }

        model = try string("model.path")
        var fields = FieldNames()
        fields.text = try string("data.fields.text")
        fields.prompt = try string("data.fields.prompt")
        fields.completion = try string("data.fields.completion")
        fields.messages = try string("data.fields.messages")
        fields.tools = try string("data.fields.tools")
        fields.instruction = try string("data.fields.instruction")
        fields.input = try string("data.fields.input")
        fields.output = try string("data.fields.output")
        let formatName = try string("data.format")
        let format: DatasetFormat?
        if formatName == "auto" { format = nil } else {
            guard let f = DatasetFormat(rawValue: formatName) else {
                throw .invalidValue(key: "data.format", value: "'\(formatName)'", expected: "auto, " + DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))
            }
            format = f
        }
        let batching = BatchingOptions(batchSize: try int("training.batch_size", min: 1), maxSeqLen: try int("data.max_seq_len", min: 2),
                                       mode: try bool("data.packing") ? .packed : .padded,
                                       overLong: try choice("data.over_long", BatchingOptions.OverLong.self))
        data = DataSettings(path: try string("data.path"), format: format, fields: fields, trainOn: try choice("data.train_on", TrainOn.self),
                            batching: batching, validFraction: try number("data.valid_fraction", in: 0...0.5),
                            skipInvalid: try bool("data.skip_invalid"))

        let targets: LoRAConfig.Targets
        switch v["lora.targets"] {
        case .string("all-linear")?: targets = .allLinear
        case .string(let one)?: targets = .names([one])
        case .list(let names)? where !names.isEmpty: targets = .names(names)
        default: throw .invalidValue(key: "lora.targets", value: "\(v["lora.targets"] ?? .null)", expected: "all-linear or a list of module names (q_proj, v_proj, …)")
        }
        var layers: Set<Int>?
        switch v["lora.layers"] {
        case .null?, nil: layers = nil
        case .list(let items)?:
            layers = []
            for item in items {
                guard let i = Int(item), i >= 0 else { throw .invalidValue(key: "lora.layers", value: item, expected: "layer indices") }
                layers?.insert(i)
            }
        case .int(let i)? where i >= 0: layers = [i]
        default: throw .invalidValue(key: "lora.layers", value: "\(v["lora.layers"] ?? .null)", expected: "null (every layer) or a list of layer indices")
        }
        lora = LoRAConfig(rank: try int("lora.rank", min: 1), alpha: Float(try number("lora.alpha", in: 0...1e6)),
                          dropout: Float(try number("lora.dropout", in: 0...0.9)), rsLoRA: try bool("lora.rslora"),
                          targets: targets, layers: layers, initialization: try choice("lora.init", LoRAConfig.Initialization.self),
                          loftqIterations: try int("lora.loftq_iter", min: 1))
        base = try choice("quantization.base", BasePrecision.self)

        let maxNorm = v["training.max_grad_norm"] == .null ? nil : try number("training.max_grad_norm", in: 0...1e9)
        training = TrainingSettings(
            steps: try int("training.steps"), epochs: try int("training.epochs"),
            gradientAccumulation: try int("training.grad_accumulation", min: 1),
            learningRate: Float(try number("training.learning_rate", in: 0...1)),
            schedule: try choice("training.schedule", LearningRateSchedule.Kind.self),
            warmupSteps: try int("training.warmup_steps"), minLRRatio: Float(try number("training.min_lr_ratio", in: 0...1)),
            weightDecay: Float(try number("training.weight_decay", in: 0...1)), maxGradNorm: maxNorm == 0 ? nil : maxNorm,
            evalEvery: try int("training.eval_every"), evalBatches: try int("training.eval_batches"),
            earlyStoppingPatience: try int("training.early_stopping_patience"),
            seed: UInt64(try int("training.seed")), logEvery: try int("training.log_every", min: 1),
            gradientCheckpointing: try bool("training.gradient_checkpointing"),
            checkpointKeepMiB: try int("training.checkpoint_keep_mb"),
            computeDType: try choice("training.compute_dtype", ComputeDType.self))
        guard training.steps > 0 || training.epochs > 0 else {
            throw .invalidValue(key: "training.steps", value: "0", expected: "a positive step count, or training.epochs > 0")
        }
        output = OutputSettings(directory: try string("output.dir"), name: try string("output.name"),
                                saveEvery: try int("output.save_every"), keepLast: try int("output.keep_last", min: 1))
        yaml = document.yaml
    }
}
