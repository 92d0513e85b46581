import ArgumentParser
import Data
import Formats
import Foundation
import LoRA
import Models
import TensorCore
import Training

/// Mean loss over trained tokens and perplexity of a model, with or without an adapter.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Loss and perplexity of a model (optionally with an adapter) on a JSONL dataset.")

    @Option(help: "A .gguf file or 'smollm2'.") var model = "smollm2"
    @Option(help: "A Lorikeet checkpoint (.h5); its recipe gives the LoRA shape, base precision and data settings.") var adapter: String?
    @Option(help: "A JSONL file.") var data: String
    @Option(help: "Examples to evaluate (0: all).") var limit = 0
    @Option(help: "Without --adapter: re-encode the base first (nf4, q8_0, f32) to measure what quantization costs; default: the weights as stored.")
    var base: String?
    @Flag(help: "With --adapter: evaluate the base model as stored first, then with the adapter, side by side.") var compare = false

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
        let session = try ModelSession(model)
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
        /// Token-weighted mean loss of the model as it is now; prints its line.
        func evaluate(_ what: String) throws -> Double {
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
            return mean
        }
        guard let archive else {
            guard !compare else { throw CLIError("--compare needs --adapter") }
            _ = try evaluate("base model")
            return
        }
        let before = compare ? try evaluate("base model") : nil
        encoding = settings.base.rawValue
        do { lora = try LoRAAdapter.attach(to: m, recipe: settings) } catch { throw CLIError(error.description) }
        do { try lora?.load(Checkpoint.adapterTensors(archive), source: adapter ?? "") } catch { throw CLIError(error.description) }
        lora?.setTraining(false)
        let after = try evaluate("adapter \(adapter ?? "")")
        if let before {
            print(String(format: "change: loss %+.4f, perplexity ×%.3f with the adapter", after - before, Foundation.exp(after - before)))
        }
    }
}
