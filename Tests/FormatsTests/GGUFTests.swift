import Foundation
import Formats
import XCTest

/// The GGUF reader on a file written by the `gguf` package
/// (scripts/fixtures/gguf/make_gguf_fixtures.py), and on damaged or hostile files.
final class GGUFTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gguf").path

    struct Expected: Decodable {
        struct Tensor: Decodable { let shape: [Int]; let type: String; let values_u32: [UInt32] }
        let tensors: [String: Tensor]
    }

    func testMetadataOfEveryValueType() throws {
        let file = try GGUFFile(path: Self.fixture + "/types.gguf")
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 32)
        let m = file.metadata
        XCTAssertEqual(m["general.architecture"], .string("llama"))
        XCTAssertEqual(m["test.u8"], .uint8(200))
        XCTAssertEqual(m["test.i8"], .int8(-100))
        XCTAssertEqual(m["test.u16"], .uint16(60000))
        XCTAssertEqual(m["test.i16"], .int16(-30000))
        XCTAssertEqual(m["test.u32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["test.i32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["test.u64"], .uint64(18_000_000_000_000_000_000))
        XCTAssertEqual(m["test.i64"], .int64(-9_000_000_000_000_000_000))
        XCTAssertEqual(m["test.f32"], .float32(0.1))
        XCTAssertEqual(m["test.f64"], .float64(0.1))
        XCTAssertEqual(m["test.bool"], .bool(true))
        XCTAssertEqual(m["test.string"], .string("héllo, GGUF ✓"))
        XCTAssertEqual(m["test.strings"], .array([.string("a"), .string(""), .string("ünïcode")]))
        XCTAssertEqual(m["test.ints"]?.array?.compactMap(\.int), [1, 2, 3])
        XCTAssertEqual(m["test.nested"]?.array?.map { $0.array?.compactMap(\.int) ?? [] }, [[1, 2], [3]])
        XCTAssertEqual(m["test.u64"]?.int, nil, "does not fit in Int")
        XCTAssertEqual(m["test.u32"]?.int, 4_000_000_000)
    }

    func testEveryBlockTypeDecodesLikeTheGGUFPackage() throws {
        let file = try GGUFFile(path: Self.fixture + "/types.gguf")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/types.expected.json")))
        XCTAssertEqual(expected.tensors.count, 11)
        for (name, want) in expected.tensors.sorted(by: { $0.key < $1.key }) {
            let info = try XCTUnwrap(file.tensor(name), name)
            XCTAssertEqual(info.shape, want.shape, name)
            XCTAssertEqual(info.type.name, want.type, name)
            var out = [Float](repeating: .nan, count: info.elementCount)
            GGUFDequantizer.decode(info.type, bytes: file.bytes(of: info), first: 0, count: info.elementCount, into: &out)
            XCTAssertEqual(out.map(\.bitPattern), want.values_u32, "\(name) decoded values")
            var naive = [Float](repeating: .nan, count: info.elementCount)
            GGUFDequantizer.decodeNaive(info.type, bytes: file.bytes(of: info), first: 0, count: info.elementCount, into: &naive)
            XCTAssertEqual(naive.map(\.bitPattern), want.values_u32, "\(name) naive twin")
            // Row ranges decode the same values as the whole tensor.
            let width = want.shape[1]
            var row = [Float](repeating: .nan, count: width)
            GGUFDequantizer.decode(info.type, bytes: file.bytes(of: info), first: width, count: width, into: &row)
            XCTAssertEqual(row.map(\.bitPattern), Array(want.values_u32[width..<(2 * width)]), "\(name) row 1")
        }
    }

    // MARK: Damaged and hostile files

    /// Writes GGUF bytes from parts, so each test can break exactly one thing.
    struct Builder {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
        mutating func u64(_ v: UInt64) { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
        mutating func string(_ s: String, length: UInt64? = nil) { u64(length ?? UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }

        /// A valid file: one string key and one F32 tensor [2, 4] (overridable pieces).
        static func valid(magic: UInt32 = 0x4655_4747, version: UInt32 = 3, tensorCount: UInt64 = 1,
                          dims: [UInt64] = [4, 2], type: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int = 32,
                          extraTensor: Bool = false) -> [UInt8] {
            var b = Builder()
            b.u32(magic); b.u32(version); b.u64(tensorCount + (extraTensor ? 1 : 0)); b.u64(1)
            b.string("general.architecture"); b.u32(8); b.string("llama")
            for _ in 0..<(extraTensor ? 2 : 1) {
                b.string("w"); b.u32(UInt32(dims.count)); for d in dims { b.u64(d) }; b.u32(type); b.u64(offset)
            }
            b.pad(to: 32)
            b.bytes += [UInt8](repeating: 0, count: dataBytes)
            return b.bytes
        }
    }

    func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(UUID().uuidString).gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func assertRejected(_ bytes: [UInt8], mentioning words: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(bytes)
        XCTAssertThrowsError(try GGUFFile(path: path), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(path), "message names the file: \(message)", file: file, line: line)
            for w in words { XCTAssertTrue(message.contains(w), "'\(w)' in: \(message)", file: file, line: line) }
        }
    }

    func testValidBuilderFileOpens() throws {
        let file = try GGUFFile(path: try write(Builder.valid()))
        XCTAssertEqual(file.tensor("w")?.shape, [2, 4])
    }

    func testWrongMagicAndVersion() throws {
        try assertRejected(Builder.valid(magic: 0x1234_5678), mentioning: "not a GGUF file")
        try assertRejected(Builder.valid(version: 7), mentioning: "version 7")
    }

    func testTruncationAnywhereIsAnError() throws {
        let bytes = Builder.valid()
        for cut in [0, 3, 7, 15, 30, 50, 70, 90, 100] where cut < bytes.count - 32 {
            try assertRejected(Array(bytes.prefix(cut)))
        }
        try assertRejected(Array(bytes.dropLast(4)), mentioning: "outside the file", "'w'")
    }

    func testAbsurdLengthsAndCounts() throws {
        var b = Builder()
        b.u32(0x4655_4747); b.u32(3); b.u64(0); b.u64(1)
        b.string("general.architecture", length: 1 << 62)
        try assertRejected(b.bytes, mentioning: "more than the file could hold")
        try assertRejected(Builder.valid(tensorCount: 1 << 60), mentioning: "tensor count")
        var arrays = Builder()
        arrays.u32(0x4655_4747); arrays.u32(3); arrays.u64(0); arrays.u64(1)
        arrays.string("tokens"); arrays.u32(9); arrays.u32(8); arrays.u64(1 << 61)
        try assertRejected(arrays.bytes, mentioning: "'tokens'", "more than the file could hold")
    }

    func testBadTensorDirectories() throws {
        try assertRejected(Builder.valid(dims: [1 << 40, 1 << 40]), mentioning: "'w'", "overflow")
        try assertRejected(Builder.valid(dims: [4, 0]), mentioning: "'w'")
        try assertRejected(Builder.valid(dims: [1, 1, 1, 1, 1]), mentioning: "'w'", "dimensions")
        try assertRejected(Builder.valid(type: 99), mentioning: "'w'", "unknown ggml type 99")
        try assertRejected(Builder.valid(type: 16), mentioning: "'w'", "IQ2_XXS")
        try assertRejected(Builder.valid(type: 2), mentioning: "'w'", "not whole Q4_0 blocks")
        try assertRejected(Builder.valid(offset: 4), mentioning: "'w'", "alignment")
        try assertRejected(Builder.valid(offset: 1 << 40), mentioning: "'w'", "outside the file")
        try assertRejected(Builder.valid(extraTensor: true), mentioning: "'w'", "twice")
    }

    func testTheEmbeddedModelParsesQuickly() throws {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let start = Date()
        let file = try GGUFFile(path: path)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "parsing the header and vocabulary")
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(file.metadata["general.license"]?.string, "apache-2.0")
        XCTAssertEqual(file.metadata["llama.block_count"]?.int, 30)
        XCTAssertEqual(file.metadata["tokenizer.ggml.tokens"]?.array?.count, 49152)
        XCTAssertEqual(file.tensors.count, 272)
        XCTAssertEqual(file.tensor("blk.0.ffn_gate.weight")?.shape, [1536, 576])
    }
}
