import ArgumentParser
import Datasets
import Formats
import Foundation
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Prepare and preview training data.",
        subcommands: [PreviewData.self, PrepareFOLDOC.self])
}

/// The embedded default's data-prep: FOLDOC entries as chat examples, split train/valid/test.
struct PrepareFOLDOC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare-foldoc",
        abstract: "Turn Debian's dict-foldoc into chat examples (train/valid/test.jsonl).",
        discussion: "Each example asks about a computing term; the answer is the dictionary's definition (cross-reference markup, tags and dates removed). Deterministic given --seed.")

    @Option(help: "Output folder.") var output = "data/foldoc"
    @Option(help: "The dictd folder holding foldoc.index and foldoc.dict.dz.") var dictionary = FOLDOC.defaultDirectory
    @Option(help: "Seed of the question wording and of the split.") var seed: UInt64 = 42
    @Option(help: "Fraction held out for validation.") var validFraction = 0.02
    @Option(help: "Fraction held out for the test set.") var testFraction = 0.02

    func run() throws {
        let foldoc: FOLDOC
        do { foldoc = try FOLDOC(directory: dictionary) } catch { throw CLIError(error.description) }
        let splits = foldoc.chatSplits(seed: seed, validFraction: validFraction, testFraction: testFraction)
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            for (name, lines) in [("train", splits.train), ("valid", splits.valid), ("test", splits.test)] {
                // Written whole to a temporary name, then renamed: never a half-written split.
                let path = output + "/\(name).jsonl"
                try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            }
        } catch { throw CLIError("\(output): cannot write the dataset (\(error.localizedDescription))") }
        print("\(output): \(splits.train.count) train, \(splits.valid.count) valid, \(splits.test.count) test examples from \(foldoc.entries.count) FOLDOC entries")
    }
}

/// Examples token by token with the trained part marked, and the statistics of the whole set.
struct PreviewData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview", abstract: "Show examples as the model sees them (trained tokens marked) and dataset statistics.")

    @Option(help: "A recipe (its model, data and settings).") var recipe: String?
    @Option(help: "Model (without --recipe).") var model = "smollm2"
    @Option(help: "A JSONL file or a folder with train.jsonl (without --recipe).") var data: String?
    @Option(name: .customLong("set"), help: "Override a recipe key (repeatable).") var overrides: [String] = []
    @Option(help: "Examples to show.") var count = 2
    @Flag(help: "Count and report bad records instead of stopping at the first (recipe key data.skip_invalid).") var skipInvalid = false

    func run() throws {
        let settings = try dataRecipe(recipe: recipe, model: model, data: data, overrides: overrides + (skipInvalid ? ["data.skip_invalid=true"] : []))
        let session = try ModelSession(settings.model)
        let encoder = ExampleEncoder(tokenizer: session.tokenizer, template: session.template, trainOn: settings.data.trainOn)
        let (train, valid): (TokenizedDataset, TokenizedDataset?)
        do { (train, valid) = try RecipeData.load(settings.data, encoder: encoder, seed: settings.training.seed,
                                                          cache: TokenizationCache(directory: CacheLocation.tokenizedData)) } catch { throw CLIError(error.description) }

        let color = isatty(STDOUT_FILENO) == 1
        for (n, example) in train.examples.prefix(count).enumerated() {
            print("── example \(n + 1): \(example.ids.count) tokens, \(example.trainedTargets) trained " + (color ? "(trained tokens in green)" : "(trained tokens inside ⟦ ⟧)"))
            var out = "", inTrained = false
            for (id, trained) in zip(example.ids, example.trained) {
                if trained != inTrained { out += color ? (trained ? "\u{1B}[32m" : "\u{1B}[0m") : (trained ? "⟦" : "⟧"); inTrained = trained }
                out += session.tokenizer.decode([id])
            }
            if inTrained { out += color ? "\u{1B}[0m" : "⟧" }
            print(out)
        }
        let s = train.statistics
        print("""
        ── \(train.path) (\(train.source))
        records           \(s.records)
        examples kept     \(s.examples)
        tokens            \(s.tokens) (\(s.trainedTokens) trained, \(String(format: "%.0f%%", 100 * Double(s.trainedTokens) / Double(max(s.tokens, 1)))))
        truncated         \(s.truncated) (max_seq_len \(settings.data.batching.maxSeqLen))
        dropped           \(s.droppedTooLong) too long, \(s.droppedUntrainable) with nothing to train
        packing           \(String(format: "%.1f%%", 100 * train.packingEfficiency(settings.data.batching, seed: settings.training.seed))) of row capacity holds real tokens (\(settings.data.batching.mode.rawValue))
        lengths (tokens)
        """)
        let peak = max(s.lengthHistogram.max() ?? 1, 1)
        for (k, n) in s.lengthHistogram.enumerated() where n > 0 {
            print(String(format: "  %4d–%-4d %6d ", k * s.histogramWidth, (k + 1) * s.histogramWidth - 1, n) + String(repeating: "█", count: max(1, n * 40 / peak)))
        }
        for line in SkippedRecords.of([train, valid]).report { print(line) }
    }
}

/// The recipe a data command works from: `--recipe` with its `--set` overrides, or a model and
/// a data path on their own.
func dataRecipe(recipe: String?, model: String, data: String?, overrides: [String]) throws -> Recipe {
    var document = RecipeDocument()
    do {
        if let recipe {
            document = try RecipeDocument(yaml: try String(contentsOfFile: recipe, encoding: .utf8), source: recipe)
        } else {
            guard let data else { throw CLIError("give --recipe, or --model and --data") }
            try document.override("model.path=\(model)")
            try document.set("data.path", .string(data), source: "--data")
        }
        for o in overrides { try document.override(o) }
    } catch let e as RecipeError { throw CLIError(e.description) }
    do { return try Recipe(document) } catch { throw CLIError(error.description) }
}
