@testable import LorikeetCLI
import Formats
import Evaluation
import Foundation
import Decoding
import LoRA
import Architectures
import TestSupport
import Training
import XCTest

/// `lorikeet eval --generate` on three FOLDOC test examples with the embedded SmolLM2, run as a
/// user runs it: every reply in the report is what `lorikeet generate --temperature 0` prints for
/// the same question (with and without an adapter), and every metric follows from the texts.
final class EvalGenerateTests: XCTestCase {
    var directory = ""
    let maxTokens = 12

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        guard FileManager.default.fileExists(atPath: "/usr/share/dictd/foldoc.index") else { throw XCTSkip("dict-foldoc is not installed: run scripts/setup.sh") }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: DataPreviewCommandTests.executable), "build with swift build --build-tests")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-evalgen-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) } }

    /// Runs the built `lorikeet` with stdout and stderr apart.
    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: DataPreviewCommandTests.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LORIKEET_MODEL_DIR"] = CacheLocation.models
        environment["LORIKEET_CACHE"] = directory + "/cache"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()  // stderr stays far below a pipe's buffer
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    /// The first three FOLDOC test examples, as `lorikeet data prepare-foldoc` writes them.
    func foldocExamples() throws -> String {
        let prepared = try run(["data", "prepare-foldoc", "--output", directory + "/foldoc"])
        XCTAssertEqual(prepared.status, 0, prepared.stderr)
        let lines = try String(contentsOfFile: directory + "/foldoc/test.jsonl", encoding: .utf8).split(separator: "\n").prefix(3)
        let path = directory + "/test3.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A checkpoint over SmolLM2 (f32 base, so decoding stays quick in debug builds) with a random
    /// rank-2 adapter on every q_proj, large enough to change the replies.
    func writeCheckpoint() throws -> String {
        var document = RecipeDocument()
        for s in ["lora.rank=2", "lora.alpha=2", "lora.dropout=0", "lora.targets=q_proj", "quantization.base=f32"] { try document.override(s) }
        var archive = HDF5Archive()
        archive.strings["recipe"] = try Recipe(document).yaml
        for layer in 0..<30 {
            let module = WeightNames.layer(layer, "self_attn.q_proj")
            for (which, shape) in [("A", [2, 576]), ("B", [576, 2])] {
                let t = Fixtures.tensor(shape, seed: UInt64(layer * 2 + (which == "A" ? 0 : 1)), requiresGrad: false, scale: 0.15)
                archive.floatArrays["adapter/" + LoRAAdapter.pefName(module, which)] = .init(shape: shape, values: t.scalars)
            }
        }
        let path = directory + "/adapter.h5"
        try archive.write(to: path)
        return path
    }

    func testEveryReplyIsWhatGeneratePrintsAndTheMetricsFollowFromTheTexts() throws {
        let data = try foldocExamples(), checkpoint = try writeCheckpoint()
        let json = directory + "/report.json", markdown = directory + "/report.md"
        let eval = try run(["eval", "--data", data, "--adapter", checkpoint, "--compare", "--generate", "--max-tokens", "\(maxTokens)",
                            "--report", json, "--report", markdown])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("(3 examples generated, base model)"), eval.stdout)
        XCTAssertTrue(eval.stdout.contains("change: exact match"), eval.stdout)
        let report = try JSONDecoder().decode(EvalReport.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        XCTAssertEqual(report.runs.map(\.label), ["base model", "adapter"])
        XCTAssertEqual(report.runs.map(\.weights), ["as stored", "f32"])
        XCTAssertEqual(report.examples.count, 3)
        XCTAssertEqual(report.generation?.maxTokens, maxTokens)

        let records = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n").map { line in
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [[String: String]]])["messages"] ?? []
        }
        for (example, messages) in zip(report.examples, records) {
            XCTAssertEqual(example.prompt, messages[0]["content"])
            XCTAssertEqual(example.reference, messages[1]["content"])
            XCTAssertEqual(example.outputs.count, 2)
            for (evaluated, output) in zip(report.runs, example.outputs) {
                var arguments = ["generate", "--prompt", example.prompt, "--max-tokens", "\(maxTokens)", "--temperature", "0"]
                if evaluated.label == "adapter" { arguments += ["--adapter", checkpoint] }
                let generated = try run(arguments)
                XCTAssertEqual(generated.status, 0, generated.stderr)
                XCTAssertEqual(output.text + "\n", generated.stdout, "example \(example.index), \(evaluated.label)")
                let count = try XCTUnwrap(generated.stderr.firstMatch(of: /, (\d+) generated in/)).output.1
                XCTAssertEqual(output.metrics.tokens, Int(count), "example \(example.index), \(evaluated.label)")
                XCTAssertEqual(output.metrics, EvalMetrics(output: output.text, reference: example.reference, tokens: output.metrics.tokens))
            }
        }
        XCTAssertNotEqual(report.examples.map { $0.outputs[0].text }, report.examples.map { $0.outputs[1].text }, "the adapter changes the replies")
        for (i, run) in report.runs.enumerated() {
            XCTAssertEqual(run.means, EvalMetricMeans(report.examples.map { $0.outputs[i].metrics }))
        }
        let md = try String(contentsOfFile: markdown, encoding: .utf8)
        XCTAssertTrue(md.contains("| | base model | adapter | difference |"), md)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("partial") }, [])
    }

    func testTextRecordsAreRefusedForGeneration() throws {
        let path = directory + "/plain.jsonl"
        try "{\"text\": \"Once upon a time\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let eval = try run(["eval", "--data", path, "--generate"])
        XCTAssertNotEqual(eval.status, 0)
        XCTAssertTrue(eval.stderr.contains(path + ": format 'text' has no reference answer"), eval.stderr)
        XCTAssertEqual(try run(["eval", "--data", path, "--limit", "1"]).status, 0, "without --generate the loss is still measured")
    }
}
