import Models
import TensorCore

/// Greedy decoding: at each step the most likely next token. This first version re-runs the
/// whole sequence through the model every step (the same forward pass the parity tests verify);
/// a KV cache and sampling arrive with the generation work.
public struct GreedyDecoder {
    public let model: DecoderModel

    public init(model: DecoderModel) { self.model = model }

    /// Continues `prompt` by up to `maxTokens` tokens, stopping after any token in `stop`.
    /// `onToken` sees each token as it is chosen (streaming); returning false stops early.
    public func generate(prompt: [Int32], maxTokens: Int, stop: Set<Int32> = [],
                         onToken: (Int32) -> Bool = { _ in true }) -> [Int32] {
        precondition(!prompt.isEmpty, "generate: the prompt has no tokens")
        var sequence = prompt, produced: [Int32] = []
        let vocab = model.config.vocabSize
        for _ in 0..<maxTokens {
            let t = sequence.count
            let next: Int32 = noGrad {
                let logits = model.logits(ids: IntTensor(shape: [1, t], scalars: sequence), positions: .positions(batch: 1, length: t))
                return logits.withUnsafeBufferPointer { all in
                    let row = all.baseAddress! + (t - 1) * vocab  // the last position's logits
                    var best = 0
                    for j in 1..<vocab where row[j] > row[best] { best = j }
                    return Int32(best)
                }
            }
            produced.append(next)
            sequence.append(next)
            if !onToken(next) || stop.contains(next) { break }
        }
        return produced
    }
}
