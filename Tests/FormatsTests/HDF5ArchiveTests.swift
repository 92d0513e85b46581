import CHDF5
import Formats
import Foundation
import XCTest

/// Checkpoint files round-trip bit for bit, are readable by h5dump, and damaged or missing
/// files are reported by path without crashing; a failed write never leaves a file behind.
final class HDF5ArchiveTests: XCTestCase {
    var directories: [String] = []

    override func tearDown() {
        for dir in directories { try? FileManager.default.removeItem(atPath: dir) }
        directories = []
        super.tearDown()
    }

    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-h5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        directories.append(dir)
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
    func testFloatBitPatternsSurviveExactly() throws {
        let path = try temporaryDirectory() + "/bits.h5"
        // Quiet NaN with a payload, negative signalling-range NaN, −0, the smallest and largest subnormals.
        let bits: [UInt32] = [0x7FC0_0001, 0xFFA1_2345, 0x8000_0000, 0x0000_0001, 0x807F_FFFF, 0x7F80_0000]
        var a = HDF5Archive()
        a.floatArrays["w"] = .init(shape: [3, 2], values: bits.map(Float.init(bitPattern:)))
        try a.write(to: path)
        let back = try HDF5Archive(contentsOf: path)
        XCTAssertEqual(back.floatArrays["w"]?.shape, [3, 2])
        XCTAssertEqual(back.floatArrays["w"]?.values.map(\.bitPattern), bits)
    }

    func testNestedGroupsDottedNamesAndEdgeStrings() throws {
        let path = try temporaryDirectory() + "/nested.h5"
        var a = HDF5Archive()
        a.floatArrays["a/b/c/d/model.layers.0.mlp.down_proj.lora_B.weight"] = .init(shape: [1, 1, 1], values: [2])
        a.floatArrays["a/b/sibling"] = .init(shape: [0, 4], values: [])
        a.intArrays["a/b/c/steps"] = [1, 2, 3]
        a.strings["a/empty"] = ""
        a.strings["a/yaml"] = "lora:\n  rank: 8\n  targets: [q_proj, v_proj]\n# ünïcødé ✓ 🦜\n"
        try a.write(to: path)
        XCTAssertEqual(try HDF5Archive(contentsOf: path), a)
    }

    func testInvalidArchivesAreRejectedBeforeAnyFileExists() throws {
        let dir = try temporaryDirectory()
        var cases: [(HDF5Archive, String)] = []
        var a = HDF5Archive(); a.floatArrays["x"] = .init(shape: [2], values: [1]); cases.append((a, "'x'"))
        a = HDF5Archive(); a.floatArrays["huge"] = .init(shape: [Int.max, 4], values: []); cases.append((a, "'huge'"))
        a = HDF5Archive(); a.floatArrays["neg"] = .init(shape: [-1, -1], values: [1]); cases.append((a, "'neg'"))
        a = HDF5Archive(); a.intArrays["g"] = [1]; a.strings["g/leaf"] = "x"; cases.append((a, "'g'"))
        a = HDF5Archive(); a.intArrays["same"] = [1]; a.strings["same"] = "x"; cases.append((a, "'same'"))
        for bad in ["", "/lead", "trail/", "a//b", "a/../b"] {
            a = HDF5Archive(); a.intArrays[bad] = [1]; cases.append((a, "'\(bad)'"))
        }
        a = HDF5Archive(); a.strings["nul"] = "a\u{0}b"; cases.append((a, "'nul'"))
        for (archive, needle) in cases {
            XCTAssertThrowsError(try archive.write(to: dir + "/out.h5")) { error in
                guard case FormatError.malformed = error else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains(needle), "\(error) should name \(needle)")
            }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// Writes one scalar or 1-D dataset with the C API, as h5py or another tool would.
    func writeForeign(_ path: String, name: String, type: hid_t, count: Int?, _ data: UnsafeRawPointer) {
        let file = H5Fcreate(path, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        var dims = [hsize_t(count ?? 1)]
        let space = count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        let set = H5Dcreate2(file, name, type, space, lk_H5P_DEFAULT(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(H5Dwrite(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), data), 0)
        H5Dclose(set); H5Sclose(space); H5Fclose(file)
    }

    func testReadsForeignStringsAndRejectsOtherTypesByName() throws {
        _ = lk_H5_silence_errors()
        let dir = try temporaryDirectory()
        // A variable-length UTF-8 string (h5py's default for `str`).
        let vlen = H5Tcopy(lk_H5T_C_S1()); H5Tset_size(vlen, lk_H5T_VARIABLE()); H5Tset_cset(vlen, H5T_CSET_UTF8)
        "model: café\nsteps: 3".withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            writeForeign(dir + "/vlen.h5", name: "recipe", type: vlen, count: nil, &pointer)
        }
        H5Tclose(vlen)
        XCTAssertEqual(try HDF5Archive(contentsOf: dir + "/vlen.h5").strings, ["recipe": "model: café\nsteps: 3"])
        // A Fortran-style space-padded fixed-length string.
        let padded = H5Tcopy(lk_H5T_C_S1()); H5Tset_size(padded, 8); H5Tset_strpad(padded, H5T_STR_SPACEPAD)
        writeForeign(dir + "/padded.h5", name: "name", type: padded, count: nil, Array("abc     ".utf8))
        H5Tclose(padded)
        XCTAssertEqual(try HDF5Archive(contentsOf: dir + "/padded.h5").strings, ["name": "abc"])
        // Float64, unsigned 64-bit and 32-bit integers are refused by dataset name.
        writeForeign(dir + "/double.h5", name: "lr", type: lk_H5T_NATIVE_DOUBLE(), count: 2, [1.0, 2.0])
        writeForeign(dir + "/uint64.h5", name: "seed", type: lk_H5T_NATIVE_UINT64(), count: 1, [UInt64.max])
        writeForeign(dir + "/int32.h5", name: "step", type: lk_H5T_NATIVE_INT32(), count: 1, [Int32(7)])
        for (file, name) in [("double.h5", "'lr'"), ("uint64.h5", "'seed'"), ("int32.h5", "'step'")] {
            XCTAssertThrowsError(try HDF5Archive(contentsOf: dir + "/" + file)) { error in
                guard case FormatError.malformed = error else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".hasPrefix(dir + "/" + file) && "\(error)".contains(name), "\(error)")
            }
        }
    }

    func testMissingFileIsAnIOErrorAndDirectoryIsRefused() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try HDF5Archive(contentsOf: dir + "/missing.h5")) { error in
            XCTAssertEqual(error as? FormatError, .io(path: dir + "/missing.h5", reason: "No such file or directory"))
        }
        XCTAssertThrowsError(try HDF5Archive(contentsOf: dir)) { XCTAssertTrue("\($0)".hasPrefix(dir), "\($0)") }
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
