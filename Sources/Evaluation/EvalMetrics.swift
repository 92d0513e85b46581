import Foundation

/// Task metrics of one generated reply against its reference answer.
///
/// Normalisation (the only one): surrounding whitespace and newlines are trimmed from both
/// texts; case, inner whitespace and punctuation are kept, so "exact" means exact. Strings
/// compare as Swift strings (Unicode canonical equivalence).
public struct EvalMetrics: Sendable, Equatable, Codable {
    /// The trimmed output equals the trimmed reference.
    public var exactMatch: Bool
    /// The trimmed reference occurs somewhere in the trimmed output (the output contains the
    /// reference, not the other way round); implied by `exactMatch`.
    public var contains: Bool
    /// The trimmed output is one whole JSON text by RFC 8259's grammar, strictly (any value, so
    /// a bare number or string counts; no trailing commas, comments, NaN or single quotes;
    /// nothing may follow it).
    public var jsonValid: Bool
    /// Tokens generated, the stop token not counted.
    public var tokens: Int
    /// Characters (grapheme clusters) of the output as generated, untrimmed.
    public var characters: Int

    public init(output: String, reference: String, tokens: Int) {
        let o = Self.normalized(output), r = Self.normalized(reference)
        exactMatch = o == r
        contains = Self.contains(o, r)
        jsonValid = Self.isJSON(o)
        self.tokens = tokens
        characters = output.count
    }

    /// The text metrics compare: surrounding whitespace and newlines removed.
    public static func normalized(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `reference` occurs in `output`; an empty reference occurs in every output.
    public static func contains(_ output: String, _ reference: String) -> Bool {
        reference.isEmpty || output.contains(reference)
    }
}

/// Means of `EvalMetrics` over a set of examples: the Boolean metrics as fractions in [0, 1].
public struct EvalMetricMeans: Sendable, Equatable, Codable {
    public var examples: Int
    public var exactMatch: Double
    public var contains: Double
    public var jsonValid: Double
    public var tokens: Double
    public var characters: Double

    /// The means of `metrics`, which must not be empty.
    public init(_ metrics: [EvalMetrics]) {
        precondition(!metrics.isEmpty, "EvalMetricMeans: no examples")
        let n = Double(metrics.count)
        func fraction(_ flag: (EvalMetrics) -> Bool) -> Double { Double(metrics.lazy.filter(flag).count) / n }
        examples = metrics.count
        exactMatch = fraction(\.exactMatch)
        contains = fraction(\.contains)
        jsonValid = fraction(\.jsonValid)
        tokens = Double(metrics.reduce(0) { $0 + $1.tokens }) / n
        characters = Double(metrics.reduce(0) { $0 + $1.characters }) / n
    }
}
