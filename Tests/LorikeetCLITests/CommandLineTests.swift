@testable import LorikeetCLI
import Formats
import Foundation
import Architectures
import XCTest

final class CommandLineTests: XCTestCase {
    let known = ["train", "eval", "generate", "merge", "export", "inspect", "bench"]

    func testMistypedCommandGetsASuggestion() throws {
        let message = try XCTUnwrap(UnknownCommand.check(["trian", "x.yaml"], known: known))
        XCTAssertTrue(message.contains("unknown command 'trian'"), message)
        XCTAssertTrue(message.contains("Did you mean 'train'?"), message)
    }

    func testUnrelatedWordGetsNoWildGuess() throws {
        let message = try XCTUnwrap(UnknownCommand.check(["photosynthesis"], known: known))
        XCTAssertFalse(message.contains("Did you mean"), message)
        XCTAssertTrue(message.contains("Commands: train"), message)
    }

    func testKnownCommandsFlagsAndHelpPassThrough() {
        XCTAssertNil(UnknownCommand.check(["train"], known: known))
        XCTAssertNil(UnknownCommand.check(["--version"], known: known))
        XCTAssertNil(UnknownCommand.check(["help"], known: known))
        XCTAssertNil(UnknownCommand.check([], known: known))
    }

    func testEditDistance() {
        XCTAssertEqual(UnknownCommand.editDistance("train", "trian"), 2)
        XCTAssertEqual(UnknownCommand.editDistance("", "abc"), 3)
        XCTAssertEqual(UnknownCommand.editDistance("eval", "eval"), 0)
    }

    func testMergeNeedsAnAdapterAndAnOutput() {
        XCTAssertThrowsError(try MergeCommand.parse([])) { error in
            XCTAssertTrue(MergeCommand.message(for: error).contains("--adapter"), MergeCommand.message(for: error))
        }
    }

    func testTrainRefusesMissingRecipesAndUnknownKeysByName() throws {
        XCTAssertThrowsError(try TrainCommand.parse(["/nonexistent/recipe.yaml"]).run()) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/recipe.yaml: cannot read the recipe"), "\(error)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(UUID().uuidString).yaml").path
        try "training:\n  step: 3\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainCommand.parse([path]).run()) { error in
            XCTAssertEqual("\(error)", "\(path): unknown recipe key 'training.step'. Did you mean 'training.steps'?")
        }
        XCTAssertThrowsError(try TrainCommand.parse([path, "--set", "training.steps=3", "--set", "lora.rank=-1"]).run()) { error in
            XCTAssertTrue("\(error)".contains("unknown recipe key 'training.step'"), "\(error)")
        }
    }

}

final class InspectCommandTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("ArchitecturesTests/Fixtures").path

    func testInspectsAHuggingFaceFolder() throws {
        try InspectCommand.parse([Self.fixtures + "/qwen3", "--tensors", "--load"]).run()
    }

    /// The GGUF of every architecture (the tiny models llama.cpp's converter wrote) loads, and
    /// its architecture line names what sets the family apart.
    func testInspectsEveryArchitectureGGUF() throws {
        let expected: [(folder: String, words: [String])] = [
            ("llama", ["llama:", "RoPE frequency factors (4, rope_freqs)"]),
            ("mistral", ["llama:"]),
            ("qwen2", ["qwen2:", "QKV bias"]),
            ("qwen3", ["qwen3:", "head dim 12", "QK-norm"]),
            ("gemma", ["gemma:", "GeGLU", "norms scale by 1+w", "scaled embeddings"]),
            ("gemma2", ["gemma2:", "sliding window 4", "post-attention/MLP norms", "attention soft-cap 3", "logit soft-cap 5"]),
            ("phi3", ["phi3:", "fused QKV", "fused gate-up"]),
        ]
        for (folder, words) in expected {
            let path = Self.fixtures + "/\(folder)/model.gguf"
            let command = try InspectCommand.parse([path, "--load"])
            XCTAssertNoThrow(try command.run(), folder)
            let line = try ModelConfig(gguf: try GGUFFile(path: path)).summary
            for word in words { XCTAssertTrue(line.contains(word), "\(folder): '\(word)' missing from '\(line)'") }
        }
    }

    func testMissingPathsAndPicklesAreClearErrors() throws {
        XCTAssertThrowsError(try InspectCommand.parse(["/no/such/model"]).run()) {
            XCTAssertTrue("\($0)".contains("no such file or folder"), "\($0)")
        }
        let pickle = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(UUID().uuidString).bin").path
        XCTAssertTrue(FileManager.default.createFile(atPath: pickle, contents: Data([0x80, 0x02])))
        defer { try? FileManager.default.removeItem(atPath: pickle) }
        XCTAssertThrowsError(try InspectCommand.parse([pickle]).run()) {
            XCTAssertTrue("\($0)".contains("refuses them"), "\($0)")
        }
        let notGGUF = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(UUID().uuidString).gguf").path
        XCTAssertTrue(FileManager.default.createFile(atPath: notGGUF, contents: Data("hello".utf8)))
        defer { try? FileManager.default.removeItem(atPath: notGGUF) }
        XCTAssertThrowsError(try InspectCommand.parse([notGGUF]).run()) {
            XCTAssertTrue("\($0)".contains("not a GGUF file"), "\($0)")
        }
    }
}

/// `lorikeet data preview` run as a user runs it: a separate process, its exit status and output.
final class DataPreviewCommandTests: XCTestCase {
    /// The `lorikeet` executable built beside the test bundle (`swift build --build-tests`).
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lorikeet").path
    }

    static func run(_ arguments: [String], cache: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // A fresh cache folder (the tokenization cache writes there), the installed models.
        var environment = ProcessInfo.processInfo.environment
        environment["LORIKEET_MODEL_DIR"] = CacheLocation.models
        environment["LORIKEET_CACHE"] = cache
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testABadRecordFailsNamingFileAndLineUnlessSkipped() throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.executable), "\(Self.executable) missing: build with swift build --build-tests")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-bad-\(UUID().uuidString).jsonl").path
        try """
        {"prompt": "What is RAM?", "completion": "Memory."}
        {"prompt": "What is ROM?", "completion": "Read-only memory.", "note": }
        {"prompt": "What is a CPU?", "completion": "A processor."}

        """.write(toFile: path, atomically: true, encoding: .utf8)
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-cache-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: cache)
        }

        let failed = try Self.run(["data", "preview", "--data", path], cache: cache)
        XCTAssertNotEqual(failed.status, 0, failed.output)
        XCTAssertTrue(failed.output.contains(path + ":2:"), failed.output)
        XCTAssertTrue(failed.output.contains("malformed JSON"), failed.output)

        let skipped = try Self.run(["data", "preview", "--data", path, "--skip-invalid", "--count", "0"], cache: cache)
        XCTAssertEqual(skipped.status, 0, skipped.output)
        XCTAssertTrue(skipped.output.contains("1 invalid record skipped: 1 malformed JSON"), skipped.output)
        XCTAssertTrue(skipped.output.contains("examples kept     2"), skipped.output)
    }
}

/// Report flags are checked before anything loads.
final class EvalFlagTests: XCTestCase {
    func testReportExtensionAndMaxTokensAreCheckedWhenParsing() {
        XCTAssertThrowsError(try EvalCommand.parse(["--data", "d.jsonl", "--report", "/tmp/r.txt"])) {
            XCTAssertTrue(EvalCommand.message(for: $0).contains(".json"), EvalCommand.message(for: $0))
        }
        XCTAssertThrowsError(try EvalCommand.parse(["--data", "d.jsonl", "--generate", "--max-tokens", "0"]))
    }
}

/// `lorikeet tokenize --file`: texts past the argument limit (128 KiB on Linux) come from a
/// file, with the same ids as the argument form; bad files are named in the error.
final class TokenizeFileTests: XCTestCase {
    func testFileGivesTheArgumentsIdsAndTakesLongLines() throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-tokenize-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let text = "Hello world, <|im_start|>user 12345 naïve 中文"
        try text.write(toFile: folder + "/t.txt", atomically: true, encoding: .utf8)
        let fromArgument = try DataPreviewCommandTests.run(["tokenize", text], cache: folder)
        let fromFile = try DataPreviewCommandTests.run(["tokenize", "--file", folder + "/t.txt"], cache: folder)
        XCTAssertEqual(fromArgument.status, 0, fromArgument.output)
        XCTAssertEqual(fromFile.status, 0, fromFile.output)
        XCTAssertEqual(fromFile.output, fromArgument.output)

        let missing = try DataPreviewCommandTests.run(["tokenize", "--file", folder + "/none.txt"], cache: folder)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains(folder + "/none.txt"), missing.output)
        let both = try DataPreviewCommandTests.run(["tokenize", "--file", folder + "/t.txt", "hello"], cache: folder)
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.output.contains("not both"), both.output)
        try Data([0x61, 0xFF, 0x62]).write(to: URL(fileURLWithPath: folder + "/bad.txt"))
        let bad = try DataPreviewCommandTests.run(["tokenize", "--file", folder + "/bad.txt"], cache: folder)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.output.contains("bad.txt") && bad.output.contains("offset 1"), bad.output)

        // 300,000 letters (past the argument limit): one piece, all of it merged.
        try String(repeating: "ab", count: 150_000).write(toFile: folder + "/long.txt", atomically: true, encoding: .utf8)
        let long = try DataPreviewCommandTests.run(["tokenize", "--file", folder + "/long.txt"], cache: folder)
        XCTAssertEqual(long.status, 0, String(long.output.suffix(200)))
        let count = long.output.split(separator: "\n").last.flatMap { Int($0.split(separator: " ")[0]) } ?? 0
        XCTAssertGreaterThan(count, 0)
        XCTAssertLessThan(count, 100_000, String(long.output.suffix(200)))
    }
}
