@testable import Evaluation
import Foundation

import XCTest

/// The report writers: JSON that reads back whole, Markdown whose tables survive any text a
/// model can produce, and files that appear only when complete.
final class EvalReportTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// Texts that break naive tables: pipes, every kind of line break, backslashes, backticks,
    /// HTML, Markdown markup, non-ASCII.
    static let nasty = ["a | b || c", "line one\nline two\r\nthree\rfour", "back\\slash \\| and `code | span`", "<script>alert(1)</script> & **bold** _x_ [l](u)",
                        "```\nfenced\n```", "été 👋🏽 — ok", ""]

    static func report() -> EvalReport {
        var report = EvalReport(model: "/models/m|x.gguf", modelName: "Tiny | model", adapter: "ck.h5", data: "d.jsonl", generation: .init(maxTokens: 16))
        let texts = nasty
        report.examples = texts.indices.map { i in
            let base = texts[i], tuned = texts[(i + 1) % texts.count]
            return EvalReport.Example(index: i + 1, line: 2 * i + 1, prompt: texts[(i + 2) % texts.count], reference: texts[(i + 3) % texts.count], outputs: [
                .init(text: base, metrics: EvalMetrics(output: base, reference: texts[(i + 3) % texts.count], tokens: i)),
                .init(text: tuned, metrics: EvalMetrics(output: tuned, reference: texts[(i + 3) % texts.count], tokens: i + 1)),
            ])
        }
        let base = EvalMetricMeans(report.examples.map { $0.outputs[0].metrics }), tuned = EvalMetricMeans(report.examples.map { $0.outputs[1].metrics })
        report.runs = [.init(label: "base model", weights: "as stored", loss: 3.5, perplexity: exp(3.5), lossExamples: 7, trainedTokens: 99, means: base),
                       .init(label: "adapter", weights: "nf4", loss: 3.0, perplexity: exp(3.0), lossExamples: 7, trainedTokens: 99, means: tuned)]
        return report
    }

    func testJSONRoundTripsThroughJSONSerializationAndDecodes() throws {
        let report = Self.report()
        let data = try report.json()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["model"] as? String, "/models/m|x.gguf")
        let runs = try XCTUnwrap(object["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["label"] as? String }, ["base model", "adapter"])
        XCTAssertEqual(runs[1]["loss"] as? Double, 3.0)
        let examples = try XCTUnwrap(object["examples"] as? [[String: Any]])
        XCTAssertEqual(examples.count, Self.nasty.count)
        let outputs = try XCTUnwrap(examples[1]["outputs"] as? [[String: Any]])
        XCTAssertEqual(outputs[0]["text"] as? String, Self.nasty[1], "texts are kept byte for byte")
        let metrics = try XCTUnwrap(outputs[0]["metrics"] as? [String: Any])
        XCTAssertEqual(Set(metrics.keys), ["exactMatch", "contains", "jsonValid", "tokens", "characters"])
        // Serialised again by Foundation and decoded: the same report.
        let again = try JSONSerialization.data(withJSONObject: object)
        XCTAssertEqual(try JSONDecoder().decode(EvalReport.self, from: again), report)
    }

    /// Pipes that end a cell: those not escaped by a backslash.
    static func cellSeparators(_ line: Substring) -> Int {
        var count = 0, escaped = false
        for ch in line {
            if escaped { escaped = false; continue }
            if ch == "\\" { escaped = true } else if ch == "|" { count += 1 }
        }
        return count
    }

    func testMarkdownTablesKeepTheirShapeWhateverTheText() throws {
        let md = Self.report().markdown()
        // Every table: each row has as many cell separators as its header.
        var tables: [[Substring]] = [], current: [Substring] = []
        var inFence: String?
        for line in md.split(separator: "\n", omittingEmptySubsequences: false) {
            if let fence = inFence { if line == fence { inFence = nil }; continue }
            if line.hasPrefix("```") { inFence = String(line.prefix { $0 == "`" }); continue }
            if line.hasPrefix("|") { current.append(line) } else if !current.isEmpty { tables.append(current); current = [] }
        }
        XCTAssertNil(inFence, "every fence is closed")
        XCTAssertEqual(tables.count, 3, md)
        for table in tables {
            let width = Self.cellSeparators(table[0])
            for row in table { XCTAssertEqual(Self.cellSeparators(row), width, "row '\(row)' of table starting '\(table[0])'") }
        }
        let overview = try XCTUnwrap(tables.last)
        XCTAssertEqual(overview.count, Self.nasty.count + 2, "one row per example: no line break escaped into a new row")
        XCTAssertTrue(md.contains("| exact match | "), md)
        XCTAssertTrue(md.contains("| loss | 3.5000 | 3.0000 | -0.5000 |"), md)
        XCTAssertFalse(tables.joined().contains { $0.contains("<script>") }, "a model's HTML is escaped in tables (fences show it as text)")
        // Full texts appear verbatim in fences longer than any backtick run inside.
        XCTAssertTrue(md.contains("````text\n```\nfenced\n```\n````\n"), md)
    }

    func testCellEscaping() {
        XCTAssertEqual(EvalReport.cell("a|b", limit: 50), "a\\|b")
        XCTAssertEqual(EvalReport.cell("one\ntwo\r\nthree\rfour", limit: 50), "one<br>two<br>three<br>four")
        XCTAssertEqual(EvalReport.cell("x\\|y", limit: 50), "x\\\\\\|y")
        XCTAssertEqual(EvalReport.cell("<b>&`", limit: 50), "\\<b\\>\\&\\`")
        XCTAssertEqual(EvalReport.cell("abcdef", limit: 3), "abc…")
        XCTAssertEqual(EvalReport.cell("", limit: 3), "*(empty)*")
    }

    func testWritesAtomicallyByExtensionAndRefusesOthers() throws {
        let report = Self.report()
        let json = directory + "/r.json", md = directory + "/r.md"
        try "stale".write(toFile: json, atomically: true, encoding: .utf8)
        try report.write(to: json)
        try report.write(to: md)
        XCTAssertEqual(try JSONDecoder().decode(EvalReport.self, from: Data(contentsOf: URL(fileURLWithPath: json))), report)
        XCTAssertEqual(try String(contentsOfFile: md, encoding: .utf8), report.markdown())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["r.json", "r.md"], "no partial files left behind")
        XCTAssertThrowsError(try report.write(to: directory + "/no/such/folder/r.json"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["r.json", "r.md"])
        XCTAssertThrowsError(try report.write(to: directory + "/r.txt")) { XCTAssertTrue("\($0)".contains(".json"), "\($0)") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["r.json", "r.md"])
    }
}
