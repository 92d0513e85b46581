import ArgumentParser
import Foundation
import Lorikeet

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
        let foldoc = try FOLDOC(directory: dictionary)
        let counts = try foldoc.writeChatSplits(to: output, seed: seed, validFraction: validFraction, testFraction: testFraction)
        print("\(output): \(counts.train) train, \(counts.valid) valid, \(counts.test) test examples from \(foldoc.entries.count) FOLDOC entries")
    }
}

/// Examples token by token with the trained part marked, and the statistics of the whole set.
struct PreviewData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview", abstract: "Show examples as the model sees them (trained tokens marked) and dataset statistics.")

    @Option(help: "A recipe (its model, data and settings).") var recipe: String?
    @Option(help: "Model (without --recipe): a .gguf file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "A JSONL file or a folder with train.jsonl (without --recipe).") var data: String?
    @Option(name: .customLong("set"), help: "Override a recipe key (repeatable).") var overrides: [String] = []
    @Option(help: "Examples to show.") var count = 2
    @Flag(help: "Count and report bad records instead of stopping at the first (recipe key data.skip_invalid).") var skipInvalid = false

    func run() throws {
        let settings = try Recipe.forData(recipeFile: recipe, model: model, data: data,
                                          overrides: overrides + (skipInvalid ? ["data.skip_invalid=true"] : []))
        let preview = try DataPreview(recipe: settings, count: count)
        let color = isatty(STDOUT_FILENO) == 1
        for (n, example) in preview.examples.enumerated() {
            let trained = example.filter(\.trained).count
            print("── example \(n + 1): \(example.count) tokens, \(trained) trained " + (color ? "(trained tokens in green)" : "(trained tokens inside ⟦ ⟧)"))
            var out = "", inTrained = false
            for token in example {
                if token.trained != inTrained { out += color ? (token.trained ? "\u{1B}[32m" : "\u{1B}[0m") : (token.trained ? "⟦" : "⟧"); inTrained = token.trained }
                out += token.text
            }
            if inTrained { out += color ? "\u{1B}[0m" : "⟧" }
            print(out)
        }
        let s = preview.statistics
        print("""
        ── \(preview.path) (\(preview.source))
        records           \(s.records)
        examples kept     \(s.examples)
        tokens            \(s.tokens) (\(s.trainedTokens) trained, \(String(format: "%.0f%%", 100 * Double(s.trainedTokens) / Double(max(s.tokens, 1)))))
        truncated         \(s.truncated) (max_seq_len \(preview.batching.maxSeqLen))
        dropped           \(s.droppedTooLong) too long, \(s.droppedUntrainable) with nothing to train
        packing           \(String(format: "%.1f%%", 100 * preview.packingEfficiency)) of row capacity holds real tokens (\(preview.batching.mode.rawValue))
        lengths (tokens)
        """)
        let peak = max(s.lengthHistogram.max() ?? 1, 1)
        for (k, n) in s.lengthHistogram.enumerated() where n > 0 {
            print(String(format: "  %4d–%-4d %6d ", k * s.histogramWidth, (k + 1) * s.histogramWidth - 1, n) + String(repeating: "█", count: max(1, n * 40 / peak)))
        }
        for line in preview.skipped { print(line) }
    }
}
