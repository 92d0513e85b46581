import Datasets
import Formats
import Foundation
import Tokenization
import Training

/// A recipe's training data as the model will see it: the first examples token by token with
/// the trained ones marked, and the statistics of the whole set (what `lorikeet data preview`
/// shows).
public struct DataPreview: Sendable {
    /// One token of an example: its text and whether the model is taught to predict it.
    public struct Token: Sendable, Equatable {
        /// The token's text as it decodes.
        public var text: String
        /// Whether the loss covers it.
        public var trained: Bool
    }

    /// The first examples, token by token.
    public var examples: [[Token]]
    /// The training file.
    public var path: String
    /// Whether it was tokenized now or read from the tokenization cache.
    public var source: TokenizationSource
    /// Records, examples, tokens, truncation and drops, the length histogram.
    public var statistics: DataStatistics
    /// Share of row capacity holding real tokens, with the recipe's batching.
    public var packingEfficiency: Double
    /// The batching the recipe gives (row length, packing).
    public var batching: BatchingOptions
    /// Bad records skipped (with `data.skip_invalid`), as report lines.
    public var skipped: [String]

    /// Encodes `recipe`'s data with its model's tokenizer and template (the tokenization cache
    /// is used and filled); keeps the first `count` examples for display.
    public init(recipe: Recipe, count: Int) throws(LorikeetError) {
        let text = try ModelText(loading: recipe.model.path)
        let encoder = ExampleEncoder(tokenizer: text.tokenizer, template: text.chatTemplate, trainOn: recipe.data.trainOn)
        let (train, valid) = try lorikeet {
            try RecipeData.load(recipe, encoder: encoder, cache: TokenizationCache(directory: CacheLocation.tokenizedData))
        }
        examples = train.examples.prefix(max(0, count)).map { example in
            zip(example.ids, example.trained).map { Token(text: text.tokenizer.decode([$0]), trained: $1) }
        }
        path = train.path
        source = train.source
        statistics = train.statistics
        batching = recipe.batching(padID: text.tokenizer.eos ?? 0)
        packingEfficiency = train.packingEfficiency(batching, seed: recipe.training.seed)
        skipped = SkippedRecords.of([train, valid]).report
    }
}

extension Recipe {
    /// The recipe a data command works from: a recipe file with `overrides`, or, without one, the
    /// defaults with `model` and `data`.
    public static func forData(recipeFile: String?, model: String, data: String?, overrides: [String]) throws(LorikeetError) -> Recipe {
        if let recipeFile {
            let text: String
            do { text = try String(contentsOfFile: recipeFile, encoding: .utf8) } catch {
                throw .recipe("\(recipeFile): cannot read the recipe (\(error.localizedDescription))")
            }
            do { return try Recipe(yaml: text, source: recipeFile, overrides: overrides) } catch { throw .recipe(error.description) }
        }
        guard let data else { throw .invalidRequest("give --recipe, or --model and --data") }
        var document = RecipeDocument()
        do {
            try document.set("model.path", .string(model), source: "--model")
            try document.set("data.path", .string(data), source: "--data")
            for o in overrides { try document.override(o) }
            return try Recipe(document)
        } catch { throw .recipe(error.description) }
    }

    /// Reads a recipe file and applies `--set` overrides.
    public static func load(file: String, overrides: [String] = []) throws(LorikeetError) -> Recipe {
        try forData(recipeFile: file, model: "", data: nil, overrides: overrides)
    }
}
