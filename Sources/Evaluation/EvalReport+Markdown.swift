import Foundation


/// The Markdown form of the report: the setting, a summary table (runs side by side, with the
/// difference when there are two), an overview table of the examples with short escaped cells,
/// then each example's full texts in fenced blocks.
extension EvalReport {
    /// Characters of generated or reference text shown in a table cell.
    static let cellLimit = 120

    public func markdown() -> String {
        var md = "# Evaluation report\n\n| | |\n|---|---|\n"
        md += "| model | \(Self.cell(model, limit: 500)) (\(Self.cell(modelName, limit: 200))) |\n"
        if let adapter { md += "| adapter | \(Self.cell(adapter, limit: 500)) |\n" }
        md += "| data | \(Self.cell(data, limit: 500)) |\n"
        if let generation {
            md += "| generation | \(generation.decoding), at most \(generation.maxTokens) tokens; metrics on text with \(generation.normalization) |\n"
        }
        md += "\n## Summary\n\n" + summaryTable()
        guard !examples.isEmpty else { return md }
        md += "\n## Examples\n\n" + overviewTable() + "\n"
        for example in examples {
            let firstLine = example.prompt.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            md += "### \(example.index). \(Self.cell(firstLine, limit: Self.cellLimit)) (line \(example.line))\n\n"
            md += "Prompt:\n\n" + Self.fenced(example.prompt) + "Reference:\n\n" + Self.fenced(example.reference)
            for (run, output) in zip(runs, example.outputs) {
                md += "\(run.label.capitalizedFirst) (\(Self.verdicts(output.metrics)), \(output.metrics.characters) characters):\n\n" + Self.fenced(output.text)
            }
        }
        return md
    }

    func summaryTable() -> String {
        let two = runs.count == 2
        var md = "| | " + runs.map { Self.cell($0.label, limit: 60) }.joined(separator: " | ") + (two ? " | difference |" : " |") + "\n"
        md += "|---|" + String(repeating: "---:|", count: runs.count + (two ? 1 : 0)) + "\n"
        /// A row of one number per run, and the second minus the first.
        func row(_ name: String, _ value: (Run) -> Double?, _ format: (Double) -> String, _ difference: (Double) -> String) {
            let values = runs.map(value)
            guard values.contains(where: { $0 != nil }) else { return }
            md += "| \(name) | " + values.map { $0.map(format) ?? "" }.joined(separator: " | ")
            if two, let a = values[0], let b = values[1] { md += " | " + difference(b - a) } else if two { md += " | " }
            md += " |\n"
        }
        let number = { (d: Int) in { (x: Double) in String(format: "%.\(d)f", x) } }
        let signed = { (d: Int) in { (x: Double) in String(format: "%+.\(d)f", x) } }
        let percent = { (x: Double) in String(format: "%.1f%%", 100 * x) }
        let points = { (x: Double) in String(format: "%+.1f pts", 100 * x) }
        row("loss", { $0.loss }, number(4), signed(4))
        row("perplexity", { $0.perplexity }, number(2), signed(2))
        row("exact match", { $0.means?.exactMatch }, percent, points)
        row("contains reference", { $0.means?.contains }, percent, points)
        row("JSON-valid", { $0.means?.jsonValid }, percent, points)
        row("mean generated tokens", { $0.means?.tokens }, number(1), signed(1))
        row("mean characters", { $0.means?.characters }, number(1), signed(1))
        md += "| base weights | " + runs.map { Self.cell($0.weights, limit: 40) }.joined(separator: " | ") + (two ? " | |" : " |") + "\n"
        md += "| loss over | " + runs.map { "\($0.lossExamples) examples, \($0.trainedTokens) tokens" }.joined(separator: " | ") + (two ? " | |" : " |") + "\n"
        if let n = runs.first?.means?.examples { md += "\n\(n) examples generated.\n" }
        return md
    }

    func overviewTable() -> String {
        var md = "| # | line | prompt | reference | " + runs.map { Self.cell($0.label, limit: 60) }.joined(separator: " | ") + " |\n"
        md += "|---:|---:|---|---|" + String(repeating: "---|", count: runs.count) + "\n"
        for e in examples {
            md += "| \(e.index) | \(e.line) | \(Self.cell(e.prompt, limit: Self.cellLimit)) | \(Self.cell(e.reference, limit: Self.cellLimit)) | "
            md += e.outputs.map { Self.cell($0.text, limit: Self.cellLimit) + "<br>*" + Self.verdicts($0.metrics) + "*" }.joined(separator: " | ")
            md += " |\n"
        }
        return md
    }

    static func verdicts(_ m: EvalMetrics) -> String {
        func mark(_ flag: Bool) -> String { flag ? "✓" : "✗" }
        return "exact \(mark(m.exactMatch)) · contains \(mark(m.contains)) · JSON \(mark(m.jsonValid)) · \(m.tokens) tokens"
    }

    /// `text` as one table cell: cut to `limit` characters (marked "…"), Markdown's inline
    /// punctuation backslash-escaped (so `|` cannot end the cell and no markup or HTML from a
    /// model's output is interpreted), line breaks as `<br>`.
    static func cell(_ text: String, limit: Int) -> String {
        guard !text.isEmpty else { return "*(empty)*" }
        let cut = text.count > limit ? String(text.prefix(limit)) + "…" : text
        var out = ""
        var previousWasCR = false
        for ch in cut.unicodeScalars {
            defer { previousWasCR = ch == "\r" }
            switch ch {
            case "\n" where previousWasCR: continue
            case "\n", "\r", "\u{2028}", "\u{2029}": out += "<br>"
            case "\\", "`", "*", "_", "[", "]", "<", ">", "|", "&", "~", "#", "!": out += "\\" + String(ch)
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `text` in a fenced block whose fence is longer than any run of backticks inside it.
    static func fenced(_ text: String) -> String {
        var longest = 0, run = 0
        for ch in text {
            run = ch == "`" ? run + 1 : 0
            longest = max(longest, run)
        }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        return fence + "text\n" + text + (text.hasSuffix("\n") ? "" : "\n") + fence + "\n\n"
    }
}

extension String {
    /// The string with its first character upper-cased ("base model" → "Base model").
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
