import Data
import Foundation
import TensorCore
import Tokenizers

/// The training and validation sets a recipe names: a folder with `train.jsonl` (and
/// `valid.jsonl`), or one file from which a seeded `valid_fraction` is held out.
public enum RecipeData {
    /// `cache`: where tokenized files are kept between runs (nil: tokenize every time).
    public static func load(_ settings: Recipe.DataSettings, encoder: ExampleEncoder, seed: UInt64,
                            cache: TokenizationCache? = nil) throws(DataError) -> (train: TokenizedDataset, valid: TokenizedDataset?) {
        func dataset(_ path: String) throws(DataError) -> TokenizedDataset {
            try TokenizedDataset.load(path: path, format: settings.format, fields: settings.fields, encoder: encoder,
                                      batching: settings.batching, skipInvalid: settings.skipInvalid, cache: cache)
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
        let holdOut = Int((Double(all.examples.count) * settings.validFraction).rounded())
        guard holdOut > 0, holdOut < all.examples.count else { return (all, nil) }
        let order = BatchStream.permutation(count: all.examples.count, seed: seed ^ 0x7661_6c69_64, epoch: 0)
        let valid = order[..<holdOut].sorted().map { all.examples[$0] }
        let train = order[holdOut...].sorted().map { all.examples[$0] }
        func statistics(_ examples: [TokenizedExample], keepsSkipped: Bool) -> DataStatistics {
            var s = all.statistics
            if !keepsSkipped { s.skipped = SkippedRecords() }  // reported once, with the training set
            s.examples = examples.count
            s.tokens = examples.reduce(0) { $0 + $1.ids.count }
            s.trainedTokens = examples.reduce(0) { $0 + $1.trainedTargets }
            return s
        }
        return (TokenizedDataset(path: settings.path, examples: train, statistics: statistics(train, keepsSkipped: true), source: all.source),
                TokenizedDataset(path: settings.path + " (held out)", examples: valid, statistics: statistics(valid, keepsSkipped: false), source: all.source))
    }
}
