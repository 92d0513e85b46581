import ArgumentParser
import Datasets
import Formats
import Foundation
import Lorikeet
import LoRA
import Architectures
import TensorCore
import Training

/// Wall time of one training pass over a fixed, seeded subset of a recipe's training examples,
/// with the recipe's own batching (packing); `--vs-peft` runs the PyTorch+PEFT peer over the
/// very same token ids and trained positions, padded per batch as Hugging Face's default
/// supervised collator does, interleaved with ours.
struct BenchEpoch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epoch",
        abstract: "Wall time of one pass over N seeded training examples of a recipe (packed), vs PEFT with padding.",
        discussion: """
        Model loading and tokenization are outside the timed pass on both sides; the first step is \
        inside it. Example: lorikeet bench epoch recipes/smollm2-foldoc.yaml --examples 1000 --vs-peft fp32
        """)

    @Argument(help: "Recipe file (YAML).") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe key: section.key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Training examples in the subset (drawn with --seed from the training split).") var examples = 1000
    @Option(help: "Seed of the subset.") var seed: UInt64 = 0
    @Option(help: "Also run scripts/bench/peft_epoch_bench.py with MODE=fp32|bf16|nf4, interleaved with ours.") var vsPeft: String?
    @Option(help: "The Hugging Face folder the peer trains (default: the peers' dequantized SmolLM2).") var peerModel: String?
    @Option(help: "Passes of each side (ours, theirs, ours, theirs, …); medians are compared.") var rounds = 1

    func run() throws {
        guard examples > 0, rounds > 0 else { throw ValidationError("--examples and --rounds must be positive") }
        if let vsPeft, !["fp32", "bf16", "nf4"].contains(vsPeft) { throw ValidationError("--vs-peft is fp32, bf16 or nf4") }
        var document: RecipeDocument
        do {
            let text = try String(contentsOfFile: recipe, encoding: .utf8)
            document = try RecipeDocument(yaml: text, source: recipe)
            for o in overrides { try document.override(o) }
            // One epoch of the subset per round, nothing held out, no evaluation.
            for o in ["training.steps=0", "training.epochs=\(rounds)", "training.eval_every=0", "data.valid_fraction=0"] { try document.override(o) }
        } catch let e as RecipeError { throw CLIError(e.description) } catch { throw CLIError("\(recipe): cannot read the recipe (\(error.localizedDescription))") }
        var settings: Recipe
        do { settings = try Recipe(document) } catch { throw CLIError(error.description) }
        if vsPeft != nil {
            guard settings.lora.targets == .allLinear, !settings.lora.rsLoRA, settings.lora.initialization == .default, settings.training.gradientAccumulation == 1 else {
                throw CLIError("--vs-peft compares plain LoRA on all linear layers without gradient accumulation (the peer's settings)")
            }
            guard peerModel != nil || settings.model.path == "smollm2" else { throw CLIError("--vs-peft: give --peer-model, the Hugging Face folder of \(settings.model.path)") }
        }

        let session = try BaseModel(loading: settings.model.path)
        let model = session.model
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter.attach(to: model, recipe: settings) } catch { throw CLIError(error.description) }
        let padID = session.tokenizer.eos ?? 0
        let encoder = ExampleEncoder(tokenizer: session.tokenizer, template: session.chatTemplate, trainOn: settings.data.trainOn)
        let all: TokenizedDataset
        do { all = try RecipeData.load(settings, encoder: encoder, cache: TokenizationCache(directory: CacheLocation.tokenizedData)).train } catch { throw CLIError("\(error)") }
        guard examples <= all.count else { throw CLIError("--examples \(examples): \(settings.data.path) has \(all.count) training examples") }
        let subset = all.selecting(Self.seededSubset(of: all.count, count: examples, seed: seed), path: all.path, statistics: all.statistics)
        let realTokens = subset.lengths.reduce(0, +)
        let b = settings.batching(padID: padID)
        let (batches, rows) = subset.passShape(b)
        let trainer = Trainer(model: model, adapter: adapter, recipe: settings, train: subset, validation: nil, padID: padID)

        print(String(format: "%@: %d examples (seed %llu) of %@, %d tokens; lorikeet %@, batch %d × %d: %d batches, %d rows, %.1f%% of row capacity real",
                     settings.model.path, examples, seed, settings.data.path, realTokens, b.mode == .packed ? "packed" : "padded", b.batchSize, b.maxSeqLen,
                     batches, rows, 100 * Double(realTokens) / Double(max(1, rows * b.maxSeqLen))))
        let peerData = try vsPeft.map { _ in try Self.writePeerData(subset) }
        defer { if let peerData { try? FileManager.default.removeItem(atPath: peerData) } }

        var ours: [Double] = [], theirs: [Double] = []
        for round in 0..<rounds {
            let seconds = try BenchTiming.throwingSeconds {
                for _ in 0..<batches { _ = try trainer.trainStep() }
            }
            ours.append(seconds)
            print(String(format: "round %d  lorikeet: %.1f s, %.1f tok/s", round + 1, seconds, Double(realTokens) / seconds))
            if let mode = vsPeft, let peerData {
                let peer = try runPeer(mode: mode, data: peerData, settings: settings)
                theirs.append(peer.seconds)
                print(String(format: "round %d  peft %@ (padded per batch): %.1f s, %d of %d positions real, peak RSS %.0f MiB", round + 1, mode,
                             peer.seconds, peer.real, peer.padded, peer.peakMiB))
            }
        }
        if vsPeft != nil {
            print(String(format: "median: lorikeet %.1f s, peft %.1f s; wall-time ratio %.2f× (lorikeet / peft)", BenchTiming.median(ours), BenchTiming.median(theirs),
                         BenchTiming.median(ours) / BenchTiming.median(theirs)))
        } else {
            print(String(format: "median: lorikeet %.1f s", BenchTiming.median(ours)))
        }
        print(BenchTiming.peakMemoryLine)
    }

    /// `count` distinct indices of `0..<total` in a seeded order (a partial Fisher–Yates shuffle).
    static func seededSubset(of total: Int, count: Int, seed: UInt64) -> [Int] {
        var indices = Array(0..<total)
        var rng = RandomGenerator(seed: seed)
        for i in 0..<count {
            let j = i + Int(rng.next() % UInt64(total - i))
            indices.swapAt(i, j)
        }
        return Array(indices.prefix(count))
    }

    /// The subset's examples as the peer reads them: ids, and labels with −100 where a token is
    /// not trained (the model shifts labels itself, as ours does with `trained`).
    static func writePeerData(_ dataset: TokenizedDataset) throws -> String {
        let path = NSTemporaryDirectory() + "lorikeet-epoch-\(ProcessInfo.processInfo.processIdentifier).jsonl"
        var text = ""
        for e in dataset.examples {
            let labels = zip(e.ids, e.trained).map { $1 ? String($0) : "-100" }
            text += "{\"input_ids\": [\(e.ids.map(String.init).joined(separator: ","))], \"labels\": [\(labels.joined(separator: ","))]}\n"
        }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch { throw CLIError("\(path): cannot write the peer's examples (\(error.localizedDescription))") }
        return path
    }

    /// One pass of the PEFT peer; parses its one-line report.
    func runPeer(mode: String, data: String, settings: Recipe) throws -> (seconds: Double, real: Int, padded: Int, peakMiB: Double) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/bench/peft_epoch_bench.py").standardized.path
        var environment = ["MODE": mode, "DATA": data, "B": "\(settings.training.batchSize)", "R": "\(settings.lora.rank)",
                           "ALPHA": "\(settings.lora.alpha)", "DROPOUT": "\(settings.lora.dropout)", "LR": "\(settings.training.learningRate)"]
        if let peerModel { environment["MODEL"] = peerModel }
        let line = try BenchTiming.peerReport(script: script, environment: environment, prefix: "peft-epoch", what: "--vs-peft")
        // 'peft-epoch MODE: N examples, T tokens (P padded), S s, maxrss Z MiB'
        let words = line.replacingOccurrences(of: "(", with: "").replacingOccurrences(of: ",", with: "").split(separator: " ")
        func number(before unit: String) -> Double? {
            guard let i = words.firstIndex(where: { $0 == unit }), i > 0 else { return nil }
            return Double(words[i - 1])
        }
        guard let seconds = number(before: "s"), let real = number(before: "tokens"), let padded = number(before: "padded)") ?? number(before: "padded") else {
            throw CLIError("cannot read the PEFT peer's report: \(line)")
        }
        return (seconds, Int(real), Int(padded), number(before: "MiB") ?? .nan)
    }
}
