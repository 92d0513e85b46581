import Architectures
import Datasets
import Foundation
import TensorCore

/// The token-weighted mean loss of a model over batches: what training's validation, `eval`
/// and the merge-quality report all measure, so they agree to the last bit on the same
/// batches and options.
public struct LossMeasurement: Sendable, Equatable, Codable {
    /// Mean next-token cross-entropy over the trained targets, in nats.
    public var loss: Double
    /// Targets it covers.
    public var trainedTokens: Int
    /// Batches with at least one trained target.
    public var batches: Int

    public init(loss: Double, trainedTokens: Int, batches: Int) {
        self.loss = loss
        self.trainedTokens = trainedTokens
        self.batches = batches
    }

    /// e^loss.
    public var perplexity: Double { Foundation.exp(loss) }

    /// The mean loss of `model` over `batches` (no gradients recorded), computed as `options`
    /// say; nil when no batch trains any token.
    public static func measure(_ model: DecoderModel, batches: [Batch], options: ExecutionOptions) throws(ModelError) -> LossMeasurement? {
        var total = 0.0, tokens = 0, counted = 0
        for batch in batches where batch.trainedTokens > 0 {
            let loss = try noGrad { Result { () throws(ModelError) -> Tensor in
                try model.loss(ids: batch.ids, positions: batch.positions, segments: batch.segments, targets: batch.targets, options: options)
            } }.get()
            total += Double(loss.item) * Double(batch.trainedTokens)
            tokens += batch.trainedTokens
            counted += 1
        }
        return tokens > 0 ? LossMeasurement(loss: total / Double(tokens), trainedTokens: tokens, batches: counted) : nil
    }
}
