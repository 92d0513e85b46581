import Architectures
import Datasets
import LoRA
import TensorCore

/// A training run's every setting, typed: one `Codable` section per YAML section, one property
/// per key (the `CodingKeys` are the YAML names). The defaults are the property initialisers;
/// the recipe key list, the defaults a file leaves out and the "did you mean" suggestions are
/// all derived from `Recipe()` (see `RecipeDocument`), never written a second time.
///
/// Defaults follow QLoRA/PEFT practice where they exist (r 16, alpha 32, all-linear, NF4,
/// cosine with warmup, gradient clipping at 1).
public struct Recipe: Codable, Sendable, Equatable {
    public var model = ModelSection()
    public var data = DataSection()
    public var lora = LoRASection()
    public var quantization = QuantizationSection()
    public var training = TrainingSection()
    public var output = OutputSection()

    public init() {}

    /// `model:` — the base model.
    public struct ModelSection: Codable, Sendable, Equatable {
        /// A GGUF file, a Hugging Face folder, or a known short name (`smollm2`).
        public var path = "smollm2"
    }

    /// `data:` — where examples come from and how they become rows.
    public struct DataSection: Codable, Sendable, Equatable {
        /// A folder with train.jsonl (+ valid.jsonl), or a single JSONL file.
        public var path = "data/foldoc"
        /// `auto` detects the format from the first record.
        public var format = FormatChoice.auto
        public var fields = FieldNames()
        public var trainOn = TrainOn.assistant
        public var maxSeqLen = 256
        /// Several examples per row (positions restart, attention stops at each) or one, padded.
        public var packing = true
        public var overLong = BatchingOptions.OverLong.truncate
        /// Hold-out fraction when `path` is a single file.
        public var validFraction = 0.05
        /// Count and report bad records instead of stopping at the first.
        public var skipInvalid = false

        enum CodingKeys: String, CodingKey {
            case path, format, fields, trainOn = "train_on", maxSeqLen = "max_seq_len", packing, overLong = "over_long"
            case validFraction = "valid_fraction", skipInvalid = "skip_invalid"
        }

        /// `data.format`: a dataset format, or `auto`.
        public enum FormatChoice: String, Codable, Sendable, CaseIterable {
            case auto, text, completion, messages, alpaca
            /// The fixed format, or nil for detection.
            public var format: DatasetFormat? { DatasetFormat(rawValue: rawValue) }
        }
    }

    /// `lora:` — the adapters (PEFT's meaning for every key).
    public struct LoRASection: Codable, Sendable, Equatable {
        public var rank = 16
        public var alpha = 32.0
        public var dropout = 0.05
        /// rsLoRA: scale by alpha/√r instead of alpha/r.
        public var rsLoRA = false
        /// `all-linear` or a list of module names (`q_proj`, `v_proj`, …).
        public var targets = LoRAConfig.Targets.allLinear
        /// Only these decoder layers (null: every layer).
        public var layers: [Int]? = nil
        public var initialization = LoRAConfig.Initialization.default
        /// LoftQ's alternations of quantization and SVD.
        public var loftqIterations = 1

        enum CodingKeys: String, CodingKey {
            case rank, alpha, dropout, rsLoRA = "rslora", targets, layers, initialization = "init", loftqIterations = "loftq_iter"
        }

        /// The adapter configuration these keys describe.
        public var config: LoRAConfig {
            LoRAConfig(rank: rank, alpha: Float(alpha), dropout: Float(dropout), rsLoRA: rsLoRA, targets: targets,
                       layers: layers.map(Set.init), initialization: initialization, loftqIterations: loftqIterations)
        }
    }

    /// `quantization:` — how the frozen base is held while training. The default, `source`,
    /// trains over a quantized GGUF's own blocks (what llama.cpp serves, no re-encoding loss,
    /// no more memory than the file) and encodes float weights as NF4.
    public struct QuantizationSection: Codable, Sendable, Equatable {
        public var base = BasePrecision.source
    }

    /// `training:` — the optimisation.
    public struct TrainingSection: Codable, Sendable, Equatable {
        /// Optimizer steps; 0 means `epochs` decides.
        public var steps = 150
        public var epochs = 0
        public var batchSize = 4
        public var gradientAccumulation = 1
        /// Recompute each decoder layer in backward instead of keeping its activations (one more
        /// forward per step; activation memory drops from all layers to one).
        public var gradientCheckpointing = true
        /// With checkpointing, MiB of frozen-base products the layers keep from their first run
        /// so the recomputation skips those matmuls (faster, by that much more memory; 0: none).
        public var checkpointKeepMiB = 0
        /// What the frozen base's matmuls compute in (training and validation alike).
        public var computeDType = ComputeDType.f32
        public var learningRate = 2e-4
        public var schedule = LearningRateSchedule.Kind.cosine
        public var warmupSteps = 10
        public var minLRRatio = 0.1
        public var weightDecay = 0.0
        /// Global gradient-norm clipping (null or 0: none).
        public var maxGradNorm: Double? = 1
        /// Validate every N steps (0: only at the end).
        public var evalEvery = 50
        /// Validation batches per evaluation (0: the whole validation set).
        public var evalBatches = 0
        /// Stop after this many evaluations without improvement (0: never).
        public var earlyStoppingPatience = 0
        public var seed: UInt64 = 42
        public var logEvery = 10

        enum CodingKeys: String, CodingKey {
            case steps, epochs, batchSize = "batch_size", gradientAccumulation = "grad_accumulation"
            case gradientCheckpointing = "gradient_checkpointing", checkpointKeepMiB = "checkpoint_keep_mb"
            case computeDType = "compute_dtype", learningRate = "learning_rate", schedule, warmupSteps = "warmup_steps"
            case minLRRatio = "min_lr_ratio", weightDecay = "weight_decay", maxGradNorm = "max_grad_norm"
            case evalEvery = "eval_every", evalBatches = "eval_batches", earlyStoppingPatience = "early_stopping_patience"
            case seed, logEvery = "log_every"
        }

        /// The clipping threshold in force (nil: none).
        public var clipping: Double? { maxGradNorm.flatMap { $0 > 0 ? $0 : nil } }
    }

    /// `output:` — where checkpoints go.
    public struct OutputSection: Codable, Sendable, Equatable {
        public var dir = "checkpoints"
        /// The run's folder name under `dir` (empty: the recipe's file name).
        public var name = ""
        public var saveEvery = 50
        public var keepLast = 2

        enum CodingKeys: String, CodingKey { case dir, name, saveEvery = "save_every", keepLast = "keep_last" }
    }
}

extension Recipe {
    /// How the model's passes run, derived once here and handed to every loss and forward, so
    /// training, validation, `eval`, the benches and the library all compute alike.
    public var execution: ExecutionOptions {
        ExecutionOptions(computeDType: training.computeDType, gradientCheckpointing: training.gradientCheckpointing,
                         checkpointKeepBytes: min(training.checkpointKeepMiB, 1 << 30) << 20)  // 1 PiB: any real budget
    }

    /// Rows and batches; `padID` comes from the tokenizer (its EOS).
    public func batching(padID: Int32 = 0) -> BatchingOptions {
        BatchingOptions(batchSize: training.batchSize, maxSeqLen: data.maxSeqLen, mode: data.packing ? .packed : .padded,
                        overLong: data.overLong, padID: padID)
    }

    /// The frozen base's encoding while training.
    public var base: BasePrecision { quantization.base }

    /// The effective recipe as YAML: every key, defaults included (saved in checkpoints; reads
    /// back to an equal recipe).
    public var yaml: String { (try? RecipeDocument(self).yaml) ?? "" }

    /// Reads a recipe from YAML text (defaults for missing keys), then applies `--set`
    /// assignments; `source` names the text in errors.
    public init(yaml text: String, source: String, overrides: [String] = []) throws(RecipeError) {
        var document = try RecipeDocument(yaml: text, source: source)
        for assignment in overrides { try document.override(assignment) }
        try self.init(document)
    }

    /// The typed recipe of a flat document, every value checked.
    public init(_ document: RecipeDocument) throws(RecipeError) {
        self = try FlatCoding.unflatten(Recipe.self, from: document.values)
        try validate()
    }

    /// Range checks the types cannot express, each naming its key.
    func validate() throws(RecipeError) {
        func atLeast(_ value: Int, _ lower: Int, _ key: String) throws(RecipeError) {
            guard value >= lower else { throw .invalidValue(key: key, value: String(value), expected: "an integer ≥ \(lower)") }
        }
        func within(_ value: Double, _ range: ClosedRange<Double>, _ key: String) throws(RecipeError) {
            guard range.contains(value) else { throw .invalidValue(key: key, value: String(value), expected: "a number in \(range)") }
        }
        try atLeast(data.maxSeqLen, 2, "data.max_seq_len")
        try within(data.validFraction, 0...0.5, "data.valid_fraction")
        try atLeast(lora.rank, 1, "lora.rank")
        try within(lora.alpha, 0...1e6, "lora.alpha")
        try within(lora.dropout, 0...0.9, "lora.dropout")
        try atLeast(lora.loftqIterations, 1, "lora.loftq_iter")
        if case .names(let names) = lora.targets, names.isEmpty || names.contains(where: \.isEmpty) {
            throw .invalidValue(key: "lora.targets", value: "\(names)", expected: "all-linear or a list of module names (q_proj, v_proj, …)")
        }
        for layer in lora.layers ?? [] { try atLeast(layer, 0, "lora.layers") }
        try atLeast(training.steps, 0, "training.steps")
        try atLeast(training.epochs, 0, "training.epochs")
        try atLeast(training.batchSize, 1, "training.batch_size")
        try atLeast(training.gradientAccumulation, 1, "training.grad_accumulation")
        try atLeast(training.checkpointKeepMiB, 0, "training.checkpoint_keep_mb")
        try within(training.learningRate, 0...1, "training.learning_rate")
        try atLeast(training.warmupSteps, 0, "training.warmup_steps")
        try within(training.minLRRatio, 0...1, "training.min_lr_ratio")
        try within(training.weightDecay, 0...1, "training.weight_decay")
        if let norm = training.maxGradNorm { try within(norm, 0...1e9, "training.max_grad_norm") }
        try atLeast(training.evalEvery, 0, "training.eval_every")
        try atLeast(training.evalBatches, 0, "training.eval_batches")
        try atLeast(training.earlyStoppingPatience, 0, "training.early_stopping_patience")
        try atLeast(training.logEvery, 1, "training.log_every")
        try atLeast(output.saveEvery, 0, "output.save_every")
        try atLeast(output.keepLast, 1, "output.keep_last")
        guard training.steps > 0 || training.epochs > 0 else {
            throw .invalidValue(key: "training.steps", value: "0", expected: "a positive step count, or training.epochs > 0")
        }
    }
}

extension Recipe.DataSection.FormatChoice: RecipeChoice {}
extension TrainOn: RecipeChoice {}
extension BatchingOptions.OverLong: RecipeChoice {}
extension LoRAConfig.Initialization: RecipeChoice {}
extension BasePrecision: RecipeChoice {}
extension ComputeDType: RecipeChoice {}
extension LearningRateSchedule.Kind: RecipeChoice {}
