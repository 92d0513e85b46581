import Architectures
import Datasets
import Decoding
import Evaluation
import Foundation
import Training

/// What to evaluate: a base model, optionally with an adapter (and then optionally the base
/// alone too, side by side), on a JSONL file or on a checkpoint's own validation set.
public struct EvaluationRequest: Sendable {
    /// The base (a GGUF file, a Hugging Face folder, `smollm2`); nil: the base a checkpoint
    /// records, else `smollm2`.
    public var model: String?
    /// A Lorikeet checkpoint or a PEFT folder.
    public var adapter: String?
    /// Which weights the adapter goes over.
    public var onto = AdapterBase.trained
    /// A JSONL file; nil evaluates a checkpoint's validation set exactly as training did (its
    /// recipe's data, batches and `eval_batches`), which reproduces the recorded validation loss.
    public var data: String?
    /// Evaluate only the first N examples (0: all).
    public var limit = 0
    /// With an adapter: evaluate the base alone first.
    public var compare = false
    /// Without an adapter: re-encode the base first (what an encoding costs).
    public var reencodeBase: BasePrecision?
    /// Also answer each example greedily (at most this many tokens) and score the replies.
    public var generateMaxTokens: Int?
    /// After the adapter, the loss of these models (label, GGUF path) on the same batches:
    /// `merge`'s report of what its merged, quantized file kept of the adapter.
    var alsoModels: [(label: String, path: String)] = []

    /// A request; every argument has the default described on its property.
    public init(model: String? = nil, adapter: String? = nil, onto: AdapterBase = .trained, data: String? = nil, limit: Int = 0,
                compare: Bool = false, reencodeBase: BasePrecision? = nil, generateMaxTokens: Int? = nil) {
        self.model = model
        self.adapter = adapter
        self.onto = onto
        self.data = data
        self.limit = limit
        self.compare = compare
        self.reencodeBase = reencodeBase
        self.generateMaxTokens = generateMaxTokens
    }
}

/// What an evaluation reports as it goes.
public enum EvaluationEvent: Sendable {
    /// A model's loss over the data.
    case loss(EvalReport.Run, examples: Int, seconds: Double, what: String)
    /// A model's generated replies, scored.
    case replies(EvalMetricMeans, seconds: Double, what: String)
}

extension EvaluationRequest {
    /// Runs the evaluation; returns the report (loss per model, and replies when generating).
    public func run(progress: (EvaluationEvent) -> Void = { _ in }) throws(LorikeetError) -> EvalReport {
        if let generateMaxTokens, generateMaxTokens <= 0 { throw .invalidRequest("the most tokens per reply must be positive") }
        let source = try adapter.map { path throws(LorikeetError) in try AdapterSource.load(path) }
        if source != nil, reencodeBase != nil {
            throw .invalidRequest("re-encoding the base applies to a base model alone; an adapter's checkpoint fixes its base encoding")
        }
        if source == nil, compare { throw .invalidRequest("comparing needs an adapter") }
        let checkpoint = source?.checkpoint
        var recipe = checkpoint?.recipe ?? Recipe()
        if let data {
            recipe.data.path = data
            recipe.data.validFraction = 0
        } else if checkpoint == nil {
            throw .invalidRequest("name the data to evaluate on (only a checkpoint brings its own validation set)")
        }
        // Computed as training computed (its compute dtype), without gradients or checkpointing.
        let execution = ExecutionOptions(computeDType: recipe.training.computeDType)
        let base = try BaseModel(loading: model ?? source?.recordedBasePath ?? ModelLocation.embeddedName)
        if let checkpoint, let path = adapter { try base.checkBase(checkpoint, adapterPath: path) }

        var prompts: [PromptedExample] = []
        if generateMaxTokens != nil {
            guard let data else { throw .invalidRequest("generating replies needs a data file") }
            guard base.chatTemplate != nil else { throw .invalidRequest("\(base.path) has no chat template; replies are prompted through it") }
            prompts = try lorikeet {
                try PromptedExample.examples(from: JSONLFile(path: data, format: recipe.data.format.format, fields: recipe.data.fields,
                                                             skipInvalid: recipe.data.skipInvalid), limit: limit)
            }
        }
        let batching = recipe.batching(padID: base.tokenizer.eos ?? 0)
        let encoder = ExampleEncoder(tokenizer: base.tokenizer, template: base.chatTemplate, trainOn: recipe.data.trainOn)
        let loaded = try lorikeet { try RecipeData.load(recipe, encoder: encoder) }
        var dataset: TokenizedDataset
        var batches: [Batch]
        if data != nil {
            dataset = loaded.train
            if limit > 0 { dataset = dataset.selecting(Array(0..<min(limit, dataset.count)), path: dataset.path, statistics: dataset.statistics) }
            batches = BatchStream(dataset: dataset, options: batching, seed: 0, shuffle: false).allBatches()
        } else {
            guard let valid = loaded.valid else { throw .invalidRequest("\(recipe.data.path) has no validation set; name a data file to evaluate on") }
            dataset = valid
            batches = BatchStream(dataset: valid, options: batching, seed: 0, shuffle: false).allBatches()
            if recipe.training.evalBatches > 0 { batches = Array(batches.prefix(recipe.training.evalBatches)) }
        }

        var report = EvalReport(model: base.path, modelName: base.name, adapter: adapter, data: data ?? dataset.path,
                                generation: generateMaxTokens.map { EvalReport.GenerationSettings(maxTokens: $0) })
        var weights = reencodeBase?.rawValue ?? "as stored"
        if let reencodeBase { try base.reencode(as: reencodeBase) }

        func evaluate(_ what: String, label: String) throws(LorikeetError) -> EvalReport.Run {
            let start = Date()
            let measured: LossMeasurement?
            do { measured = try LossMeasurement.measure(base.model, batches: batches, options: execution) } catch { throw .model(error.description) }
            guard let measured else { throw .data("\(data ?? dataset.path): no trained tokens to evaluate") }
            var run = EvalReport.Run(label: label, weights: weights, loss: measured.loss, perplexity: measured.perplexity,
                                     lossExamples: dataset.examples.count, trainedTokens: measured.trainedTokens)
            progress(.loss(run, examples: dataset.examples.count, seconds: Date().timeIntervalSince(start), what: what))
            if let maxTokens = generateMaxTokens {
                let replyStart = Date()
                var metrics: [EvalMetrics] = []
                for (i, example) in prompts.enumerated() {
                    let text = try base.renderPrompt(example.messages, tools: example.tools)
                    let summary = try GenerationSession(base).generate(text, parseSpecial: true, options: .greedy(maxTokens: maxTokens)).collect()
                    let output = EvalReport.Output(text: summary.text, metrics: EvalMetrics(output: summary.text, reference: example.reference,
                                                                                            tokens: summary.generatedTokens))
                    if report.examples.count <= i {
                        report.examples.append(EvalReport.Example(index: i + 1, line: example.line, prompt: example.userText,
                                                                  reference: example.reference, outputs: []))
                    }
                    report.examples[i].outputs.append(output)
                    metrics.append(output.metrics)
                }
                let means = EvalMetricMeans(metrics)
                run.means = means
                progress(.replies(means, seconds: Date().timeIntervalSince(replyStart), what: what))
            }
            report.runs.append(run)
            return run
        }

        guard let source else {
            _ = try evaluate("base model", label: "base model")
            return report
        }
        if compare { _ = try evaluate("base model", label: "base model") }
        let applied = try base.apply(source, onto: onto)
        weights = applied.baseWeights
        _ = try evaluate("adapter \(source.path)", label: "adapter")
        for other in alsoModels {
            let start = Date()
            let loaded = try BaseModel(loading: other.path)
            let measured: LossMeasurement?
            do { measured = try LossMeasurement.measure(loaded.model, batches: batches, options: execution) } catch { throw .model(error.description) }
            guard let measured else { throw .data("\(data ?? dataset.path): no trained tokens to evaluate") }
            let run = EvalReport.Run(label: other.label, weights: "as stored", loss: measured.loss, perplexity: measured.perplexity,
                                     lossExamples: dataset.examples.count, trainedTokens: measured.trainedTokens)
            progress(.loss(run, examples: dataset.examples.count, seconds: Date().timeIntervalSince(start), what: other.path))
            report.runs.append(run)
        }
        return report
    }
}
