import Datasets
import Formats
import Foundation
import LoRA
import Architectures
import TensorCore
@testable import Training
import XCTest

/// Checkpoints survive the worst moment: a process killed while saving, and a loss that turns
/// NaN. The kill test runs a real second process (this test binary, running only
/// `testSaveLoopChild`) and SIGKILLs it at random moments while it saves over and over.
final class InterruptedSaveTests: XCTestCase {
    static let loopFolder = "LORIKEET_SAVE_LOOP_DIR"

    static let paddedSteps = 4 << 20

    /// Only runs as the child of `testKilledSavesLeaveOnlyCompleteCheckpoints`: trains and
    /// saves every step, with a padded archive so that most of its time is spent writing.
    func testSaveLoopChild() throws {
        guard let folder = ProcessInfo.processInfo.environment[Self.loopFolder] else {
            throw XCTSkip("runs only as the child process of the kill test")
        }
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(["training.steps=100000"]))
        let run = RunDirectory(path: folder)
        // A long metrics history (80 MiB; the reader refuses datasets its schema does not name).
        let padding = HDF5Archive.FloatArray(shape: [Self.paddedSteps], values: [Float](repeating: 0.5, count: Self.paddedSteps))
        let steps = [Int64](repeating: 1, count: Self.paddedSteps)
        while true {
            _ = try trainer.trainStep()
            var archive = trainer.checkpoint(base: BaseIdentity(name: "tiny", path: "", sha256: "-", license: "")).archive
            for name in ["metrics/loss", "metrics/lr", "metrics/tokens_per_second"] { archive.floatArrays[name] = padding }
            archive.intArrays["metrics/step"] = steps
            try run.save(archive: archive, step: trainer.step, keepLast: 2)
        }
    }

    /// Only runs as the child of `testKilledRunResumesBitIdentically`: 20 steps, a checkpoint,
    /// then it waits to be killed.
    func testTwentyStepsThenWaitChild() throws {
        guard let folder = ProcessInfo.processInfo.environment[Self.loopFolder + "_20"] else {
            throw XCTSkip("runs only as the child process of the resume test")
        }
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(Self.resumeSettings))
        for _ in 0..<20 { _ = try trainer.trainStep() }
        try RunDirectory(path: folder).save(trainer.checkpoint(base: BaseIdentity(name: "tiny", path: "", sha256: "-", license: "")),
                                            step: trainer.step, keepLast: 2)
        while true { sleep(1) }
    }

    static let resumeSettings = ["training.steps=40", "quantization.base=nf4", "lora.dropout=0.1", "training.grad_accumulation=2",
                                 "training.learning_rate=0.005", "training.warmup_steps=5"]

    /// The exact-resume check: 40 steps straight against 20 steps in a process that is
    /// then SIGKILLed, resumed from its checkpoint for 20 more — the same 40 losses and the same
    /// adapter bytes.
    func testKilledRunResumesBitIdentically() throws {
        let straight = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(Self.resumeSettings))
        while !straight.finished { _ = try straight.trainStep() }
        XCTAssertEqual(straight.step, 40)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-kill20-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["TrainingTests.InterruptedSaveTests/testTwentyStepsThenWaitChild"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.loopFolder + "_20": folder]) { $1 }
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        let run = RunDirectory(path: folder), deadline = Date().addingTimeInterval(120)
        while run.latest == nil, child.isRunning, Date() < deadline { usleep(20_000) }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal)
        let checkpoint = try XCTUnwrap(run.latest, "the child saved no checkpoint")

        let resumed = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(Self.resumeSettings))
        try resumed.restore(Checkpoint(contentsOf: checkpoint), source: checkpoint)
        XCTAssertEqual(resumed.step, 20)
        while !resumed.finished { _ = try resumed.trainStep() }
        XCTAssertEqual(resumed.metrics.losses.count, 40)
        XCTAssertEqual(Array(resumed.metrics.losses.suffix(20)), Array(straight.metrics.losses.suffix(20)), "steps 21–40")
        XCTAssertEqual(resumed.metrics.losses.prefix(20).map(Float.init), straight.metrics.losses.prefix(20).map(Float.init), "steps 1–20 (stored as Float32)")
        for ((name, a), (_, b)) in zip(straight.adapter.parameters, resumed.adapter.parameters) {
            XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), name)
        }
    }

    func testKilledSavesLeaveOnlyCompleteCheckpoints() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-kill-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let run = RunDirectory(path: folder)
        var rng = RandomGenerator(seed: 5)
        var killedMidSave = 0, lastStep = 0
        for round in 0..<20 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["TrainingTests.InterruptedSaveTests/testSaveLoopChild"]
            child.environment = ProcessInfo.processInfo.environment.merging([Self.loopFolder: folder]) { $1 }
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Wait for this round's first new checkpoint, then kill at a random moment.
            let deadline = Date().addingTimeInterval(60)
            while run.latest.flatMap(Self.step) ?? 0 <= lastStep, Date() < deadline, child.isRunning { usleep(5_000) }
            // Anywhere in the next save cycle (about 1.5 s in a loaded debug build, most of it
            // building the 80 MiB image before the partial file appears).
            usleep(useconds_t(20_000 + rng.next() % 2_500_000))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal, "round \(round): the child must have been killed, not have failed")

            let names = try FileManager.default.contentsOfDirectory(atPath: folder)
            if names.contains(where: { $0.contains(".partial-") }) { killedMidSave += 1 }
            let files = run.stepFiles()
            XCTAssertFalse(files.isEmpty, "round \(round)")
            for file in files {
                let archive = try HDF5Archive(contentsOf: file)  // every checkpoint under a real name is whole
                XCTAssertEqual(archive.floatArrays["metrics/loss"]?.values.count, Self.paddedSteps, file)
                XCTAssertNotNil(archive.strings["recipe"], file)
            }
            lastStep = try XCTUnwrap(run.latest.flatMap(Self.step))
        }
        XCTAssertGreaterThan(killedMidSave, 0, "no kill landed inside a save: the test saw nothing")

        // The next save clears the dead processes' partial files; resuming the latest works.
        let latest = try XCTUnwrap(run.latest)
        let resumed = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe(["training.steps=100000"]))
        try resumed.restore(Checkpoint(contentsOf: latest), source: latest)
        XCTAssertEqual(resumed.step, lastStep)
        let report = try resumed.trainStep()
        XCTAssertTrue(report.loss.isFinite)
        try run.save(resumed.checkpoint(base: BaseIdentity(name: "", path: "", sha256: "", license: "")), step: resumed.step, keepLast: 2)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: folder).contains { $0.contains(".partial-") })
    }

    static func step(_ file: String) -> Int? {
        Int(((file as NSString).lastPathComponent).dropFirst("step-".count).prefix(6))
    }

    func testNonFiniteLossStopsTheStepAndKeepsTheLastGoodState() throws {
        let trainer = try TrainingLoopTests.trainer(try TrainingLoopTests.recipe([]))
        _ = try trainer.trainStep()
        let good = trainer.adapter.parameters.map { $0.tensor.scalars }
        // A B matrix gone infinite (what a diverging run produces) makes the next loss NaN.
        let poisoned = try XCTUnwrap(trainer.adapter.parameters.first { $0.name.hasSuffix("lora_B.weight") }).tensor
        poisoned.withUnsafeMutableBufferPointer { $0[0] = .infinity }
        let before = trainer.adapter.parameters.map { $0.tensor.scalars }
        XCTAssertThrowsError(try trainer.trainStep()) { error in
            guard case TrainingError.nonFiniteLoss(let step) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 2)
            XCTAssertTrue(String(describing: error).contains("last good checkpoint"), "\(error)")
        }
        XCTAssertEqual(trainer.step, 1, "the failed step is not counted")
        for (a, b) in zip(before, trainer.adapter.parameters.map { $0.tensor.scalars }) {
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "no update was applied")
        }
        XCTAssertEqual(good.count, before.count)
    }
}
