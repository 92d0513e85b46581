import Formats
import Foundation
import Generation

/// What `lorikeet eval --report` writes: the setting, one run per evaluated model (the base,
/// the base with the adapter, or both with `--compare`) and, with `--generate`, every
/// example's prompt, reference and the output of each run. `.json` or `.md` by the path's extension.
struct EvalReport: Codable, Equatable {
    /// The model file (as resolved) and its name from the metadata.
    var model: String
    var modelName: String
    var adapter: String?
    var data: String
    /// Generation settings, or nil without `--generate`.
    var generation: GenerationSettings?
    var runs: [Run] = []
    var examples: [Example] = []

    struct GenerationSettings: Codable, Equatable {
        var maxTokens: Int
        var decoding = "greedy"
        var normalization = "surrounding whitespace trimmed; case and inner text kept"
    }

    /// One model evaluated: loss over the dataset's trained tokens, and the means of the
    /// generated examples' metrics.
    struct Run: Codable, Equatable {
        /// "base model" or "adapter".
        var label: String
        /// How the frozen base was encoded ("as stored", "nf4", …).
        var weights: String
        var loss: Double
        var perplexity: Double
        /// Examples and trained tokens the loss covers.
        var lossExamples: Int
        var trainedTokens: Int
        var means: EvalMetricMeans?
    }

    /// One generated example; `outputs[i]` is the reply of `runs[i]`.
    struct Example: Codable, Equatable {
        /// 1-based position among the generated examples, and the record's line in the data file.
        var index: Int
        var line: Int
        /// The last user message before the reference turn.
        var prompt: String
        var reference: String
        var outputs: [Output]
    }

    struct Output: Codable, Equatable {
        var text: String
        var metrics: EvalMetrics
    }

    enum Format: String {
        case json, markdown

        /// `.json` or `.md`/`.markdown`; anything else is refused.
        init(path: String) throws {
            switch (path as NSString).pathExtension.lowercased() {
            case "json": self = .json
            case "md", "markdown": self = .markdown
            default: throw CLIError("--report \(path): the report is JSON (.json) or Markdown (.md); name the file with one of those extensions")
            }
        }
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // A diverging model's perplexity can overflow; the report still gets written.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// Writes the report at `path` in the format its extension names, atomically: into
    /// `<path>.partial-<pid>`, then renamed, so an interrupted run leaves no report that looks whole.
    func write(to path: String) throws {
        let bytes: Data
        switch try Format(path: path) {
        case .json:
            do { bytes = try json() } catch { throw CLIError("--report \(path): cannot encode the report (\(error))") }
        case .markdown: bytes = Data(markdown().utf8)
        }
        let partial = path + ".partial-\(getpid())"
        do {
            try bytes.write(to: URL(fileURLWithPath: partial))
            try AtomicFolder.moveIntoPlace(partial, path)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw CLIError("\(path): cannot write the report (\(error))")
        }
    }
}
