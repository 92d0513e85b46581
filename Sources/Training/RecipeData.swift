import Datasets
import Foundation
import TensorCore
import Tokenization

/// The training and validation sets a recipe names: a folder with `train.jsonl` (and
/// `valid.jsonl`), or one file from which a seeded `valid_fraction` is held out.
public enum RecipeData {
    /// `cache`: where tokenized files are kept between runs (nil: tokenize every time).
    public static func load(_ recipe: Recipe, encoder: ExampleEncoder, cache: TokenizationCache? = nil) throws(DataError)
        -> (train: TokenizedDataset, valid: TokenizedDataset?) {
        let settings = recipe.data, seed = recipe.training.seed, batching = recipe.batching()
        func dataset(_ path: String) throws(DataError) -> TokenizedDataset {
            try TokenizedDataset.load(path: path, format: settings.format.format, fields: settings.fields, encoder: encoder,
                                      batching: batching, skipInvalid: settings.skipInvalid, cache: cache)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: settings.path, isDirectory: &isDirectory) else {
            throw .io(path: settings.path, reason: "no such file or folder (for the default recipe, prepare it with: lorikeet data prepare-foldoc --output \(settings.path))")
        }
        if isDirectory.boolValue {
            let trainPath = settings.path + "/train.jsonl", validPath = settings.path + "/valid.jsonl"
            let train = try dataset(trainPath)
            guard FileManager.default.fileExists(atPath: validPath) else { return (train, nil) }
            let valid = try dataset(validPath)
            return (train, valid)
        }
        let all = try dataset(settings.path)
        let holdOut = Int((Double(all.count) * settings.validFraction).rounded())
        guard holdOut > 0, holdOut < all.count else { return (all, nil) }
        let order = BatchStream.permutation(count: all.count, seed: seed ^ 0x7661_6c69_64, epoch: 0)
        let valid = Array(order[..<holdOut]).sorted(), train = Array(order[holdOut...]).sorted()
        func statistics(_ indices: [Int], keepsSkipped: Bool) -> DataStatistics {
            var s = all.statistics
            if !keepsSkipped { s.skipped = SkippedRecords() }  // reported once, with the training set
            s.examples = indices.count
            s.tokens = indices.reduce(0) { $0 + all.length($1) }
            s.trainedTokens = indices.reduce(0) { $0 + all.example($1).trainedTargets }
            return s
        }
        return (all.selecting(train, path: settings.path, statistics: statistics(train, keepsSkipped: true)),
                all.selecting(valid, path: settings.path + " (held out)", statistics: statistics(valid, keepsSkipped: false)))
    }
}
