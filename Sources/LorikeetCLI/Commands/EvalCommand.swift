import ArgumentParser
import Foundation
import Lorikeet

/// Mean loss over trained tokens and perplexity of a model, with or without an adapter; with
/// `--generate`, also a greedy reply to each example scored against its reference answer.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Loss and perplexity of a model (optionally with an adapter) on a JSONL dataset, and task metrics of its replies.",
        discussion: """
        --generate answers each example's prompt (everything before its last assistant turn, through the chat template, greedy, \
        as lorikeet generate --temperature 0 does) and compares the reply with that turn: exact match and contains (both after \
        trimming surrounding whitespace), JSON-valid, length. --report PATH.json or PATH.md writes everything, per example.
        Without --data, a checkpoint is evaluated on its own validation set exactly as training measured it.
        Example: lorikeet eval --adapter checkpoints/smollm2-foldoc/best.h5 --data data/foldoc/test.jsonl --limit 20 --compare --generate --report eval.md
        """)

    @Option(help: "A .gguf file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b) (default: the base a checkpoint records, else smollm2).") var model: String?
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String?
    @Option(help: "With --adapter: trained (the base encoded as in training, the default) or original (the weights as stored).")
    var onto: AdapterBase = .trained
    @Option(help: "A JSONL file (default with a checkpoint: its validation set).") var data: String?
    @Option(help: "Examples to evaluate (0: all).") var limit = 0
    @Option(help: "Without --adapter: re-encode the base first (nf4, q8_0, f32) to measure what quantization costs; default: the weights as stored.")
    var base: BasePrecision?
    @Flag(help: "With --adapter: evaluate the base model as stored first, then with the adapter, side by side.") var compare = false
    @Flag(help: "Also generate a greedy reply to each example and score it against the reference answer.") var generate = false
    @Option(help: "With --generate: the most tokens per reply.") var maxTokens = 128
    @Option(help: "Write a report to this file: JSON if it ends in .json, Markdown if .md (repeatable).") var report: [String] = []

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        for path in report {
            do { _ = try EvalReport.Format(path: path) } catch { throw ValidationError("\(error)") }
        }
        if data == nil, adapter == nil { throw ValidationError("give --data (or --adapter with a checkpoint, to use its validation set)") }
    }

    func run() throws {
        let request = EvaluationRequest(model: model, adapter: adapter, onto: onto, data: data, limit: limit, compare: compare,
                                        reencodeBase: base, generateMaxTokens: generate ? maxTokens : nil)
        let summary = try request.run { event in
            switch event {
            case .loss(let run, let examples, let seconds, let what):
                print(String(format: "loss %.4f  perplexity %.2f  (%d examples, %d trained tokens, %@, weights %@)", run.loss, run.perplexity,
                             examples, run.trainedTokens, what, run.weights))
                note(String(format: "[evaluated in %.1f s]", seconds))
            case .replies(let means, let seconds, let what):
                print(String(format: "exact match %.1f%%  contains %.1f%%  JSON-valid %.1f%%  mean length %.1f tokens, %.1f characters  (%d examples generated, %@)",
                             100 * means.exactMatch, 100 * means.contains, 100 * means.jsonValid, means.tokens, means.characters, means.examples, what))
                note(String(format: "[generated in %.1f s, greedy, at most %d tokens each]", seconds, maxTokens))
            }
            fflush(nil)
        }
        if summary.runs.count == 2 {
            let (before, after) = (summary.runs[0], summary.runs[1])
            print(String(format: "change: loss %+.4f, perplexity ×%.3f with the adapter", after.loss - before.loss, Foundation.exp(after.loss - before.loss)))
            if let a = before.means, let b = after.means {
                print(String(format: "change: exact match %+.1f, contains %+.1f, JSON-valid %+.1f points, mean length %+.1f tokens with the adapter",
                             100 * (b.exactMatch - a.exactMatch), 100 * (b.contains - a.contains), 100 * (b.jsonValid - a.jsonValid), b.tokens - a.tokens))
            }
        }
        for path in report {
            try summary.write(to: path)
            note("report: \(path)")
        }
    }
}

extension AdapterBase: ExpressibleByArgument {}
extension BasePrecision: ExpressibleByArgument {}
