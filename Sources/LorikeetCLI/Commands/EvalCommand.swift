import ArgumentParser
import Datasets
import Formats
import Evaluation
import Foundation
import Decoding
import LoRA
import Architectures
import TensorCore
import Training

/// Mean loss over trained tokens and perplexity of a model, with or without an adapter; with
/// `--generate`, also a greedy reply to each example scored against its reference answer.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Loss and perplexity of a model (optionally with an adapter) on a JSONL dataset, and task metrics of its replies.",
        discussion: """
        --generate answers each example's prompt (everything before its last assistant turn, through the chat template, greedy, \
        as lorikeet generate --temperature 0 does) and compares the reply with that turn: exact match and contains (both after \
        trimming surrounding whitespace), JSON-valid, length. --report PATH.json or PATH.md writes everything, per example.
        Example: lorikeet eval --adapter checkpoints/smollm2-foldoc/best.h5 --data data/foldoc/test.jsonl --limit 20 --compare --generate --report eval.md
        """)

    @Option(help: "A .gguf file or 'smollm2'.") var model = "smollm2"
    @Option(help: "A Lorikeet checkpoint (.h5); its recipe gives the LoRA shape, base precision and data settings.") var adapter: String?
    @Option(help: "A JSONL file.") var data: String
    @Option(help: "Examples to evaluate (0: all).") var limit = 0
    @Option(help: "Without --adapter: re-encode the base first (nf4, q8_0, f32) to measure what quantization costs; default: the weights as stored.")
    var base: String?
    @Flag(help: "With --adapter: evaluate the base model as stored first, then with the adapter, side by side.") var compare = false
    @Flag(help: "Also generate a greedy reply to each example and score it against the reference answer.") var generate = false
    @Option(help: "With --generate: the most tokens per reply.") var maxTokens = 128
    @Option(help: "Write a report to this file: JSON if it ends in .json, Markdown if .md (repeatable).") var report: [String] = []

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        for path in report {
            do { _ = try EvalReport.Format(path: path) } catch { throw ValidationError("\(error)") }
        }
    }

    func run() throws {
        var document = RecipeDocument()
        var archive: HDF5Archive?
        do {
            if let adapter {
                let a = try HDF5Archive(contentsOf: adapter)
                guard let saved = a.strings["recipe"] else { throw CLIError("\(adapter): not a Lorikeet checkpoint (no recipe)") }
                document = try RecipeDocument(yaml: saved, source: adapter)
                archive = a
            }
            try document.set("data.path", .string(data), source: "--data")
            try document.set("data.valid_fraction", .double(0), source: "--data")
        } catch let e as FormatError { throw CLIError(e.description) } catch let e as RecipeError { throw CLIError(e.description) }
        var settings: Recipe
        do { settings = try Recipe(document) } catch { throw CLIError(error.description) }
        var prompts: [PromptedExample] = []
        if generate {
            do {
                let file = try JSONLFile(path: data, format: settings.data.format, fields: settings.data.fields, skipInvalid: settings.data.skipInvalid)
                prompts = try PromptedExample.examples(from: file, limit: limit)
            } catch { throw CLIError(error.description) }
        }
        let session = try ModelSession(model)
        if generate, session.template == nil { throw CLIError("\(session.path) has no chat template; --generate renders prompts with it") }
        if let archive, let expected = archive.strings["base/sha256"], try session.identity().sha256 != expected {
            throw CLIError("\(session.path) is not the base \(adapter ?? "") was trained on (SHA-256 differs)")
        }
        let m = session.model
        var lora: LoRAAdapter?
        var encoding = "as stored"
        if let base {
            guard archive == nil else { throw CLIError("--base applies to a base model alone; an adapter's checkpoint fixes its base precision") }
            guard let precision = BasePrecision(rawValue: base) else {
                throw CLIError("--base \(base): expected one of \(BasePrecision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            do { try m.quantizeBase(to: precision) } catch { throw CLIError(error.description) }
            encoding = precision.rawValue
        }
        settings.data.batching.padID = session.tokenizer.eos ?? 0
        let encoder = ExampleEncoder(tokenizer: session.tokenizer, template: session.template, trainOn: settings.data.trainOn)
        var dataset: TokenizedDataset
        do { dataset = try RecipeData.load(settings.data, encoder: encoder, seed: 0).train } catch { throw CLIError(error.description) }
        if limit > 0 { dataset = dataset.selecting(Array(0..<min(limit, dataset.count)), path: dataset.path, statistics: dataset.statistics) }
        let batches = BatchStream(dataset: dataset, options: settings.data.batching, seed: 0, shuffle: false).allBatches()
        var summary = EvalReport(model: session.path, modelName: session.name, adapter: adapter, data: data,
                                 generation: generate ? .init(maxTokens: maxTokens) : nil)
        /// Token-weighted mean loss of the model as it is now, then its replies when generating;
        /// prints its lines and adds the run to the report.
        func evaluate(_ what: String, label: String) throws -> EvalReport.Run {
            let start = Date()
            var total = 0.0, tokens = 0
            for batch in batches where batch.trainedTokens > 0 {
                let loss: Tensor
                do { loss = try noGrad { try m.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets) } } catch {
                    throw CLIError("\(error)")
                }
                total += Double(loss.item) * Double(batch.trainedTokens)
                tokens += batch.trainedTokens
            }
            guard tokens > 0 else { throw CLIError("\(data): no trained tokens to evaluate") }
            let mean = total / Double(tokens)
            print(String(format: "loss %.4f  perplexity %.2f  (%d examples, %d trained tokens, %@, weights %@)", mean, Foundation.exp(mean),
                         dataset.examples.count, tokens, what, encoding))
            note(String(format: "[evaluated in %.1f s]", Date().timeIntervalSince(start)))
            var run = EvalReport.Run(label: label, weights: encoding, loss: mean, perplexity: Foundation.exp(mean), lossExamples: dataset.examples.count,
                                     trainedTokens: tokens)
            if generate { run.means = try generateReplies(what) }
            summary.runs.append(run)
            return run
        }
        /// A greedy reply to every prompt, each from an empty cache (so no reply depends on the
        /// examples before it), scored and added to the report's examples.
        func generateReplies(_ what: String) throws -> EvalMetricMeans {
            let start = Date()
            var metrics: [EvalMetrics] = []
            for (i, example) in prompts.enumerated() {
                let text = try session.renderPrompt(example.messages, tools: example.tools)
                let reply = try session.reply(to: text, parseSpecial: true, generator: Generator(model: m), maxTokens: maxTokens,
                                              sampling: SamplingOptions(), echo: false)
                let output = EvalReport.Output(text: reply.text, metrics: EvalMetrics(output: reply.text, reference: example.reference, tokens: reply.generatedTokens))
                if summary.examples.count <= i {
                    summary.examples.append(EvalReport.Example(index: i + 1, line: example.line, prompt: example.userText, reference: example.reference, outputs: []))
                }
                summary.examples[i].outputs.append(output)
                metrics.append(output.metrics)
            }
            let means = EvalMetricMeans(metrics)
            print(String(format: "exact match %.1f%%  contains %.1f%%  JSON-valid %.1f%%  mean length %.1f tokens, %.1f characters  (%d examples generated, %@)",
                         100 * means.exactMatch, 100 * means.contains, 100 * means.jsonValid, means.tokens, means.characters, means.examples, what))
            note(String(format: "[generated in %.1f s, greedy, at most %d tokens each]", Date().timeIntervalSince(start), maxTokens))
            return means
        }
        /// Writes the reports asked for, once every run is done.
        func finish() throws {
            for path in report {
                try summary.write(to: path)
                note("report: \(path)")
            }
        }
        guard let archive else {
            guard !compare else { throw CLIError("--compare needs --adapter") }
            _ = try evaluate("base model", label: "base model")
            try finish()
            return
        }
        let before = compare ? try evaluate("base model", label: "base model") : nil
        encoding = settings.base.rawValue
        do { lora = try LoRAAdapter.attach(to: m, recipe: settings) } catch { throw CLIError(error.description) }
        do { try lora?.load(Checkpoint.adapterTensors(archive), source: adapter ?? "") } catch { throw CLIError(error.description) }
        lora?.setTraining(false)
        let after = try evaluate("adapter \(adapter ?? "")", label: "adapter")
        if let before {
            print(String(format: "change: loss %+.4f, perplexity ×%.3f with the adapter", after.loss - before.loss, Foundation.exp(after.loss - before.loss)))
            if let a = before.means, let b = after.means {
                print(String(format: "change: exact match %+.1f, contains %+.1f, JSON-valid %+.1f points, mean length %+.1f tokens with the adapter",
                             100 * (b.exactMatch - a.exactMatch), 100 * (b.contains - a.contains), 100 * (b.jsonValid - a.jsonValid), b.tokens - a.tokens))
            }
        }
        try finish()
    }
}
