import Foundation
import TensorCore

/// How the next token is chosen. Temperature 0 is greedy decoding; otherwise the logits go
/// through transformers' processors in generate()'s order — repetition penalty, temperature,
/// top-k, top-p, min-p — and a token is drawn from the softmax with a seeded generator.
public struct SamplingOptions: Sendable, Equatable {
    public var temperature: Float
    /// Keep the k most likely tokens (0: off).
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: off).
    public var topP: Float
    /// Drop tokens less likely than minP × the most likely one (0: off).
    public var minP: Float
    /// CTRL's penalty on tokens already in the prompt or the reply (1: off).
    public var repetitionPenalty: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    public var isGreedy: Bool { temperature == 0 }

    /// What is wrong with these settings, or nil.
    public var problem: String? {
        if !(temperature >= 0) || !temperature.isFinite { return "temperature must be 0 (greedy) or positive" }
        if topK < 0 { return "top-k must be 0 (off) or positive" }
        if !(topP > 0 && topP <= 1) { return "top-p must be in (0, 1]" }
        if !(minP >= 0 && minP < 1) { return "min-p must be in [0, 1)" }
        if !(repetitionPenalty > 0) || !repetitionPenalty.isFinite { return "the repetition penalty must be positive" }
        return nil
    }
}

public struct Sampler {
    public let options: SamplingOptions
    var rng: RandomGenerator

    public init(_ options: SamplingOptions) {
        self.options = options
        rng = RandomGenerator(seed: options.seed)
    }

    /// The processed scores (−∞ for removed tokens) transformers' processors would give.
    public func scores(logits: [Float], history: [Int32]) -> [Float] {
        var s = logits
        let o = options
        if o.repetitionPenalty != 1 {
            for id in Set(history) where id >= 0 && Int(id) < s.count {
                let x = s[Int(id)]
                s[Int(id)] = x < 0 ? x * o.repetitionPenalty : x / o.repetitionPenalty
            }
        }
        guard !o.isGreedy else { return s }
        if o.temperature != 1 { s = s.map { $0 / o.temperature } }
        if o.topK > 0 && o.topK < s.count {
            let threshold = s.sorted(by: >)[o.topK - 1]
            s = s.map { $0 < threshold ? -.infinity : $0 }
        }
        if o.topP < 1 {
            // Ascending order; drop the low tail whose cumulative probability is ≤ 1 − p, always
            // keeping the most likely token.
            let order = s.indices.sorted { s[$0] < s[$1] || (s[$0] == s[$1] && $0 < $1) }
            let probabilities = Self.softmax(order.map { s[$0] })
            var cumulative: Float = 0
            for (rank, index) in order.enumerated() where rank < order.count - 1 {
                cumulative += probabilities[rank]
                if cumulative <= 1 - o.topP { s[index] = -.infinity }
            }
        }
        if o.minP > 0 {
            let probabilities = Self.softmax(s)
            let floor = o.minP * (probabilities.max() ?? 0)
            let best = s.indices.max { s[$0] < s[$1] } ?? 0
            for i in s.indices where probabilities[i] < floor && i != best { s[i] = -.infinity }
        }
        return s
    }

    /// The next token after `history` (prompt and reply so far).
    public mutating func next(logits: [Float], history: [Int32]) -> Int32 {
        let s = scores(logits: logits, history: history)
        if options.isGreedy {
            var best = 0
            for j in s.indices where s[j] > s[best] { best = j }
            return Int32(best)
        }
        let probabilities = Self.softmax(s)
        // Inverse CDF in Double: one uniform draw per token from the run's seeded generator.
        let u = Double(rng.next() >> 11) * 0x1p-53
        var cumulative = 0.0, last = 0
        for (i, p) in probabilities.enumerated() where p > 0 {
            cumulative += Double(p)
            last = i
            if u < cumulative { return Int32(i) }
        }
        return Int32(last)
    }

    static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        guard m > -.infinity else { return x.map { _ in 0 } }
        let e = x.map { Foundation.exp(Double($0 - m)) }
        let sum = e.reduce(0, +)
        return e.map { Float($0 / sum) }
    }
}
