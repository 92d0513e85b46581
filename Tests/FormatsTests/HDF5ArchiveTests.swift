import Formats
import Foundation
import XCTest

/// Checkpoint files round-trip bit for bit, are readable by h5dump, and damaged or missing
/// files are reported by path without crashing; a failed write never leaves a file behind.
final class HDF5ArchiveTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-h5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func sample() -> HDF5Archive {
        var a = HDF5Archive()
        a.floatArrays["adapter/base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] =
            .init(shape: [2, 3], values: [1, -0.0, .nan, Float(bitPattern: 1), .infinity, -3.5])
        a.floatArrays["optimizer/m/x"] = .init(shape: [0], values: [])
        a.floatArrays["scalar"] = .init(shape: [], values: [42])
        a.intArrays["state/step"] = [150]
        a.intArrays["state/rng"] = [Int64.min, -1, 0, Int64.max]
        a.intArrays["metrics/empty"] = []
        a.strings["recipe"] = "model:\n  path: smollm2\ntraining:\n  steps: 150\n"
        a.strings["base/name"] = "SmolLM2 café 中文"
        a.strings["base/license"] = ""
        return a
    }

    func testRoundTripIsExact() throws {
        let path = try temporaryDirectory() + "/ckpt.h5"
        let a = sample()
        try a.write(to: path)
        XCTAssertEqual(try HDF5Archive(contentsOf: path), a)
        // Nothing but the file itself is left in the folder.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent), ["ckpt.h5"])
    }

    func testH5dumpReadsIt() throws {
        let h5dump = "/usr/bin/h5dump"
        guard FileManager.default.isExecutableFile(atPath: h5dump) else { throw XCTSkip("h5dump missing (hdf5-tools): run scripts/setup.sh") }
        let path = try temporaryDirectory() + "/ckpt.h5"
        try sample().write(to: path)
        func run(_ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: h5dump)
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
            return String(decoding: data, as: UTF8.self)
        }
        let header = try run(["-H", path])
        XCTAssertTrue(header.contains("DATASET \"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight\""), header)
        XCTAssertTrue(header.contains("GROUP \"state\""), header)
        let step = try run(["-d", "/state/step", path])
        XCTAssertTrue(step.contains("150"), step)
        let recipe = try run(["-d", "/recipe", path])
        XCTAssertTrue(recipe.contains("steps: 150"), recipe)
    }

    func testDamagedAndMissingFilesAreReportedByPath() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/ckpt.h5"
        try sample().write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = dir + "/truncated.h5"
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        let random = dir + "/random.h5"
        var rng = SystemRandomNumberGenerator()
        try Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: random))
        for bad in [truncated, random, dir + "/missing.h5"] {
            XCTAssertThrowsError(try HDF5Archive(contentsOf: bad)) { error in
                XCTAssertTrue("\(error)".hasPrefix(bad), "\(error)")
            }
        }
    }

    func testFailedWritesLeaveNothingAndKeepTheOldFile() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try sample().write(to: dir + "/no/such/folder/ckpt.h5"))
        let path = dir + "/ckpt.h5"
        try sample().write(to: path)
        var bad = sample()
        bad.floatArrays["broken"] = .init(shape: [2, 2], values: [1, 2, 3])
        XCTAssertThrowsError(try bad.write(to: path)) { XCTAssertTrue("\($0)".contains("'broken'"), "\($0)") }
        XCTAssertEqual(try HDF5Archive(contentsOf: path), sample())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt.h5"])
    }
}

/// SHA-256 against FIPS 180-4's examples and sha256sum.
final class SHA256Tests: XCTestCase {
    func testKnownDigests() throws {
        func digest(_ s: String) -> String { var h = SHA256(); h.update(Array(s.utf8)); return SHA256.hex(h.finalize()) }
        XCTAssertEqual(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        for _ in 0..<1000 { million.update([UInt8](repeating: 0x61, count: 1000)) }
        XCTAssertEqual(SHA256.hex(million.finalize()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
