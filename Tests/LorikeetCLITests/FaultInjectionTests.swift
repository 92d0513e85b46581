import Foundation
import Lorikeet
import XCTest

/// Faults a long run meets, injected into the real `lorikeet` process: SIGKILL at random moments
/// (inside steps, saves and validation), SIGTERM, a full disk during a save, a damaged
/// tokenization cache, a killed merge. Each time, nothing under a real name is broken and the
/// run continues to exactly the losses of an uninterrupted one.
final class FaultInjectionTests: XCTestCase {
    var directory = ""
    var cache = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-faults-\(UUID().uuidString)").path
        cache = directory + "/.cache"
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let sentences = ["the adapter and the attention", "an embedding of the adapter", "attention and embeddings", "the adapter in the attention"]
        for (split, count) in [("train", 64), ("valid", 8)] {
            let lines = (0..<count).map { #"{"text": "\#(sentences[$0 % 4]) \#(sentences[($0 / 4) % 4])"}"# }
            try (lines.joined(separator: "\n") + "\n").write(toFile: directory + "/data/\(split).jsonl", atomically: true, encoding: .utf8)
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A recipe over the tiny model: `steps` steps, a checkpoint every `saveEvery`, validation
    /// every 5, dropout on (its generators are part of what must resume exactly).
    func recipe(steps: Int, saveEvery: Int, evalEvery: Int = 5) throws -> String {
        let path = directory + "/r-\(steps)-\(saveEvery)-\(evalEvery).yaml"
        try """
        model:
          path: \(BadInputTableTests.tiny)
        data:
          path: \(directory)/data
          max_seq_len: 16
        lora:
          rank: 4
          dropout: 0.1
        training:
          steps: \(steps)
          batch_size: 2
          learning_rate: 0.005
          warmup_steps: 2
          eval_every: \(evalEvery)
          log_every: 1
        output:
          save_every: \(saveEvery)
          keep_last: 2

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func start(_ arguments: [String], shell: String? = nil) throws -> (Process, Pipe) {
        let process = Process()
        if let shell {
            // `sh -c 'limits; exec lorikeet "$@"'`: the limit applies to lorikeet alone.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", shell + "; exec \"$0\" \"$@\"", DataPreviewCommandTests.executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: DataPreviewCommandTests.executable)
            process.arguments = arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["LORIKEET_CACHE"] = cache
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return (process, pipe)
    }

    func run(_ arguments: [String], shell: String? = nil) throws -> (status: Int32, output: String) {
        let (process, pipe) = try start(arguments, shell: shell)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Every `.h5` under a real name in `folder` opens as a whole checkpoint.
    func assertCheckpointsOpen(_ folder: String, _ context: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names where name.hasSuffix(".h5") {
            XCTAssertNoThrow(try Checkpoint(contentsOf: folder + "/" + name), "\(context): \(name)")
        }
    }

    /// The parts of a finished run that must not depend on interruptions (timings excluded).
    func assertSameRun(_ a: Checkpoint, _ b: Checkpoint, _ context: String) {
        XCTAssertEqual(a.metrics.steps, b.metrics.steps, context)
        XCTAssertEqual(a.metrics.losses, b.metrics.losses, "\(context): losses bit for bit")
        XCTAssertEqual(a.metrics.learningRates, b.metrics.learningRates, context)
        XCTAssertEqual(a.metrics.validationSteps, b.metrics.validationSteps, context)
        XCTAssertEqual(a.metrics.validationLosses, b.metrics.validationLosses, context)
        XCTAssertEqual(a.adapter, b.adapter, "\(context): adapter bit for bit")
        XCTAssertEqual(a.state, b.state, "\(context): optimizer, cursor and generators")
    }

    func testTwentyKillsAtRandomMomentsResumeToTheUninterruptedRun() throws {
        let steps = 120
        let path = try recipe(steps: steps, saveEvery: 1)
        let reference = directory + "/reference"
        let started = Date()
        let straight = try run(["train", path, "--output", reference])
        XCTAssertEqual(straight.status, 0, straight.output)
        let duration = Date().timeIntervalSince(started)
        let expected = try Checkpoint(contentsOf: RunDirectory(path: reference).stepFile(steps))

        let folder = directory + "/killed"
        var rng = SystemRandomNumberGenerator()
        var kills = 0, attempts = 0
        while true {
            attempts += 1
            XCTAssertLessThan(attempts, 200, "the run never finished")
            guard attempts < 200 else { return }
            let resume = RunDirectory(path: folder).latest != nil ? ["--resume", "latest"] : []
            let (process, pipe) = try start(["train", path, "--output", folder] + resume)
            if kills < 20 {
                // Anywhere in the run's life: loading, steps, saves, validation.
                usleep(UInt32(Double.random(in: 0.05...max(0.1, duration * 0.4), using: &rng) * 1e6))
                kill(process.processIdentifier, SIGKILL)
            }
            _ = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            assertCheckpointsOpen(folder, "after attempt \(attempts)")
            if process.terminationReason == .uncaughtSignal { kills += 1; continue }
            XCTAssertEqual(process.terminationStatus, 0)
            if kills >= 20 { break }
            // It finished before the kill: start the run again from scratch.
            try FileManager.default.removeItem(atPath: folder)
        }
        XCTAssertGreaterThanOrEqual(kills, 20)
        assertSameRun(try Checkpoint(contentsOf: RunDirectory(path: folder).stepFile(steps)), expected, "after \(kills) kills")
    }

    /// SIGTERM saves, exits 130 with the resume hint, like Ctrl-C; resuming finishes the run.
    func testSIGTERMSavesAndResumes() throws {
        let steps = 60
        let path = try recipe(steps: steps, saveEvery: 1000)
        let reference = directory + "/reference"
        XCTAssertEqual(try run(["train", path, "--output", reference]).status, 0)
        let folder = directory + "/term"
        let (process, pipe) = try start(["train", path, "--output", folder])
        // Wait for training to start (the first step line), then ask it to stop.
        var output = Data()
        while !String(decoding: output, as: UTF8.self).contains("step 3/") {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output += chunk
        }
        kill(process.processIdentifier, SIGTERM)
        output += pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 130, text)
        XCTAssertTrue(text.contains("(interrupted)") && text.contains("resume with --resume latest"), text)
        let resumed = try run(["train", path, "--output", folder, "--resume", "latest"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        assertSameRun(try Checkpoint(contentsOf: RunDirectory(path: folder).stepFile(steps)),
                      try Checkpoint(contentsOf: RunDirectory(path: reference).stepFile(steps)), "SIGTERM then resume")
    }

    /// A full disk during a save (a file-size limit fails write(2) the same way): a clear error
    /// naming the file, the previous checkpoint intact, no partial file, and the run resumes.
    func testFullDiskDuringASaveKeepsThePreviousCheckpoint() throws {
        let steps = 12
        let path = try recipe(steps: steps, saveEvery: 4, evalEvery: 0)
        let reference = directory + "/reference"
        XCTAssertEqual(try run(["train", path, "--output", reference]).status, 0)
        // The same run stopped after step 4 with its checkpoint saved (through the library).
        let folder = directory + "/full"
        let stopped = try FineTune(recipe: Recipe.load(file: path), runDirectory: folder).run { event in
            if case .step(let report) = event, report.step == 4 { return .stop }
            return .more
        }
        XCTAssertEqual(stopped, .interrupted(checkpoint: folder + "/step-000004.h5", step: 4))
        let before = try Data(contentsOf: URL(fileURLWithPath: folder + "/step-000004.h5"))
        // Resumed with no room for the next save (a 4 KiB file-size limit): it fails at step 8.
        let full = try run(["train", path, "--output", folder, "--resume", "latest"], shell: "ulimit -f 8")
        XCTAssertEqual(full.status, 1, full.output)
        XCTAssertTrue(full.output.contains(folder + "/step-000008.h5"), full.output)
        XCTAssertTrue(full.output.contains("the last complete checkpoint is \(folder)/step-000004.h5"), full.output)
        XCTAssertTrue(full.output.contains("--resume latest"), full.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/step-000004.h5")), before, "the previous checkpoint is untouched")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), ["step-000004.h5"], "no partial file")
        // Room again: the run continues to the uninterrupted run's end.
        let resumed = try run(["train", path, "--output", folder, "--resume", "latest"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        assertSameRun(try Checkpoint(contentsOf: RunDirectory(path: folder).stepFile(steps)),
                      try Checkpoint(contentsOf: RunDirectory(path: reference).stepFile(steps)), "full disk then resume")
    }

    /// A damaged tokenization cache entry is rebuilt, never trusted: the same examples come out.
    func testDamagedTokenizationCacheIsRebuilt() throws {
        let arguments = ["data", "preview", "--model", BadInputTableTests.tiny, "--data", directory + "/data/train.jsonl", "--count", "3"]
        let first = try run(arguments)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("(tokenized"), first.output)
        XCTAssertTrue(try run(arguments).output.contains("(cached"))
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache + "/tokenized").filter { $0.hasSuffix(".lktok") }
        XCTAssertEqual(entries.count, 1)
        let entry = cache + "/tokenized/" + entries[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: entry))
        for damage in ["flipped", "truncated"] {
            var broken = bytes
            if damage == "flipped" { broken[broken.count / 2] ^= 0x5A } else { broken = broken.prefix(broken.count / 3) }
            try broken.write(to: URL(fileURLWithPath: entry))
            let again = try run(arguments)
            XCTAssertEqual(again.status, 0, again.output)
            XCTAssertTrue(again.output.contains("(tokenized"), "\(damage): \(again.output)")
            // The examples as shown are the same as from a sound entry.
            XCTAssertEqual(again.output.split(separator: "\n").filter { !$0.contains("──") }, first.output.split(separator: "\n").filter { !$0.contains("──") }, damage)
            bytes = try Data(contentsOf: URL(fileURLWithPath: entry))  // rewritten whole
            XCTAssertTrue(try run(arguments).output.contains("(cached"), damage)
        }
    }

    /// A merge or an export killed at any moment leaves nothing under the output's name, or a
    /// whole output.
    func testKilledMergesAndExportsLeaveNothingOrAWholeOutput() throws {
        let path = try recipe(steps: 2, saveEvery: 1000)
        XCTAssertEqual(try run(["train", path, "--output", directory + "/run"]).status, 0)
        let checkpoint = directory + "/run/step-000002.h5"
        var rng = SystemRandomNumberGenerator()
        for attempt in 0..<12 {
            let out = directory + "/merged-\(attempt).gguf"
            let (process, pipe) = try start(["merge", "--adapter", checkpoint, "--output", out, "--format", "gguf", "--quant", "f32"])
            usleep(UInt32.random(in: 0...400_000, using: &rng))
            kill(process.processIdentifier, SIGKILL)
            _ = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            if FileManager.default.fileExists(atPath: out) {
                XCTAssertNoThrow(try BaseModel(loading: out).logits(ids: [1, 21, 60]), "attempt \(attempt): a file under the real name is whole")
            }
            let folder = directory + "/peft-\(attempt)"
            let (export, exportPipe) = try start(["export", "--adapter", checkpoint, "--format", "peft", "--output", folder])
            usleep(UInt32.random(in: 0...300_000, using: &rng))
            kill(export.processIdentifier, SIGKILL)
            _ = exportPipe.fileHandleForReading.readDataToEndOfFile()
            export.waitUntilExit()
            if FileManager.default.fileExists(atPath: folder) {
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(),
                               ["README.md", "adapter_config.json", "adapter_model.safetensors"], "attempt \(attempt): a folder under the real name is whole")
                XCTAssertNoThrow(try AdapterSource.load(folder), "attempt \(attempt)")
            }
        }
    }
}
