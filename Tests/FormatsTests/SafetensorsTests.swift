import Foundation
import Formats
import XCTest

/// The safetensors reader on well-formed files and on damaged or hostile ones.
final class SafetensorsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    /// Writes a safetensors file from a header object and raw data.
    func write(_ name: String, header: String, data: [UInt8], headerLength: UInt64? = nil) throws -> String {
        let headerBytes = Array(header.utf8)
        var bytes = withUnsafeBytes(of: (headerLength ?? UInt64(headerBytes.count)).littleEndian) { Array($0) }
        bytes += headerBytes + data
        let path = directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func floats(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } } }

    func testReadsF32F16AndBF16() throws {
        // F32 [2, 2] = 1, -2, 0.5, 3; F16 [2] = 1.5, -0.25 (0x3E00, 0xB400); BF16 [1] = 2 (0x4000).
        let data = floats([1, -2, 0.5, 3]) + [0x00, 0x3E, 0x00, 0xB4] + [0x00, 0x40]
        let header = #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[20,22]},"__metadata__":{"format":"pt"}}"#
        let file = try SafetensorsFile(path: try write("ok.safetensors", header: header, data: data))
        XCTAssertEqual(file.metadata["format"], "pt")
        var out = [Float](repeating: 0, count: 4)
        try file.decode("a", into: &out)
        XCTAssertEqual(out, [1, -2, 0.5, 3])
        try file.decode("h", into: &out)
        XCTAssertEqual(Array(out.prefix(2)), [1.5, -0.25])
        try file.decode("b", into: &out)
        XCTAssertEqual(out[0], 2)
        XCTAssertThrowsError(try file.decode("nope", into: &out)) { XCTAssertEqual($0 as? FormatError, .missingTensor(path: file.path, tensor: "nope")) }
    }

    func assertMalformed(_ header: String, data: [UInt8] = [], headerLength: UInt64? = nil, mentions: String,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write("bad.safetensors", header: header, data: data, headerLength: headerLength)
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path) && message.contains(mentions), "message: \(message)", file: file, line: line)
        }
    }

    func testBadFilesAreErrorsNamingTheProblem() throws {
        try assertMalformed("{}", headerLength: 1 << 40, mentions: "exceeds the file size")
        try assertMalformed("not json", mentions: "not valid JSON")
        try assertMalformed(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: floats([1, 2]), mentions: "runs past the end")
        try assertMalformed(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: floats([1, 2]), mentions: "which needs 12")
        try assertMalformed(#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, data: floats([1, 2]), mentions: "overflows")
        try assertMalformed(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}"#, data: floats([1, 2]), mentions: "non-negative")
        try assertMalformed(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: floats([1, 2]), mentions: "increasing pair")
        try assertMalformed(#"{"w":{"dtype":"F32"}}"#, mentions: "lacks dtype, shape or data_offsets")
        let short = directory.appendingPathComponent("short.safetensors").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        XCTAssertThrowsError(try SafetensorsFile(path: short)) { XCTAssertTrue("\($0)".contains("too short")) }
    }

    func testUnsupportedDTypeNamesTheTensor() throws {
        let path = try write("i8.safetensors", header: #"{"q":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"#, data: [1, 2])
        XCTAssertThrowsError(try SafetensorsFile(path: path)) {
            XCTAssertEqual($0 as? FormatError, .unsupportedDType(path: path, tensor: "q", dtype: "I8"))
        }
    }

    func testFolderRefusesPickleAndReadsShards() throws {
        try Data([0x80, 0x02]).write(to: directory.appendingPathComponent("pytorch_model.bin"))
        XCTAssertThrowsError(try SafetensorsFolder(path: directory.path)) { error in
            guard case .pickleRefused = error as? FormatError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("convert to safetensors"))
        }
        _ = try write("a.safetensors", header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats([7]))
        _ = try write("b.safetensors", header: #"{"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: floats([8]))
        try Data(#"{"weight_map":{"x":"a.safetensors","y":"b.safetensors"}}"#.utf8)
            .write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        let folder = try SafetensorsFolder(path: directory.path)
        XCTAssertEqual(folder.tensorNames, ["x", "y"])
        try Data(#"{"weight_map":{"x":"../a.safetensors"}}"#.utf8).write(to: directory.appendingPathComponent("model.safetensors.index.json"))
        XCTAssertThrowsError(try SafetensorsFolder(path: directory.path)) { XCTAssertTrue("\($0)".contains("outside the folder")) }
    }
}
