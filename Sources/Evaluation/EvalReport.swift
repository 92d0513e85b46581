import Formats
import Foundation

/// What `lorikeet eval --report` writes: the setting, one run per evaluated model (the base,
/// the base with the adapter, or both with `--compare`) and, with `--generate`, every
/// example's prompt, reference and the output of each run. `.json` or `.md` by the path's extension.
public struct EvalReport: Codable, Equatable, Sendable {
    /// The model file (as resolved) and its name from the metadata.
    public var model: String
    public var modelName: String
    public var adapter: String?
    public var data: String
    /// Generation settings, or nil without `--generate`.
    public var generation: GenerationSettings?
    public var runs: [Run] = []
    public var examples: [Example] = []

    public init(model: String, modelName: String, adapter: String?, data: String, generation: GenerationSettings?) {
        self.model = model
        self.modelName = modelName
        self.adapter = adapter
        self.data = data
        self.generation = generation
    }

    public struct GenerationSettings: Codable, Equatable, Sendable {
        public var maxTokens: Int
        public var decoding = "greedy"
        public var normalization = "surrounding whitespace trimmed; case and inner text kept"
        public init(maxTokens: Int) { self.maxTokens = maxTokens }
    }

    /// One model evaluated: loss over the dataset's trained tokens, and the means of the
    /// generated examples' metrics.
    public struct Run: Codable, Equatable, Sendable {
        /// "base model" or "adapter".
        public var label: String
        /// How the frozen base was encoded ("as stored", "nf4", …).
        public var weights: String
        public var loss: Double
        public var perplexity: Double
        /// Examples and trained tokens the loss covers.
        public var lossExamples: Int
        public var trainedTokens: Int
        public var means: EvalMetricMeans?

        public init(label: String, weights: String, loss: Double, perplexity: Double, lossExamples: Int, trainedTokens: Int,
                    means: EvalMetricMeans? = nil) {
            self.label = label
            self.weights = weights
            self.loss = loss
            self.perplexity = perplexity
            self.lossExamples = lossExamples
            self.trainedTokens = trainedTokens
            self.means = means
        }
    }

    /// One generated example; `outputs[i]` is the reply of `runs[i]`.
    public struct Example: Codable, Equatable, Sendable {
        /// 1-based position among the generated examples, and the record's line in the data file.
        public var index: Int
        public var line: Int
        /// The last user message before the reference turn.
        public var prompt: String
        public var reference: String
        public var outputs: [Output]

        public init(index: Int, line: Int, prompt: String, reference: String, outputs: [Output]) {
            self.index = index
            self.line = line
            self.prompt = prompt
            self.reference = reference
            self.outputs = outputs
        }
    }

    public struct Output: Codable, Equatable, Sendable {
        public var text: String
        public var metrics: EvalMetrics

        public init(text: String, metrics: EvalMetrics) {
            self.text = text
            self.metrics = metrics
        }
    }

    public enum Format: String, Sendable {
        case json, markdown

        /// `.json` or `.md`/`.markdown`; anything else is refused.
        public init(path: String) throws {
            switch (path as NSString).pathExtension.lowercased() {
            case "json": self = .json
            case "md", "markdown": self = .markdown
            default: throw EvaluationError.report("--report \(path): the report is JSON (.json) or Markdown (.md); name the file with one of those extensions")
            }
        }
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // A diverging model's perplexity can overflow; the report still gets written.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// Writes the report at `path` in the format its extension names, atomically: into
    /// `<path>.partial-<pid>`, then renamed, so an interrupted run leaves no report that looks whole.
    public func write(to path: String) throws {
        let bytes: Data
        switch try Format(path: path) {
        case .json:
            do { bytes = try json() } catch { throw EvaluationError.report("--report \(path): cannot encode the report (\(error))") }
        case .markdown: bytes = Data(markdown().utf8)
        }
        let partial = path + ".partial-\(getpid())"
        do {
            try bytes.write(to: URL(fileURLWithPath: partial))
            try AtomicFolder.moveIntoPlace(partial, path)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw EvaluationError.report("\(path): cannot write the report (\(error))")
        }
    }
}

/// Failures of evaluation and its reports, naming the file at fault.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    case report(String)

    public var description: String {
        switch self {
        case .report(let why): return why
        }
    }
}
