import CKernels
import Foundation
import Formats
import XCTest

/// Real blocks of the types Q4_K_M files mix (Q5_0, Q4_K, Q6_K, Q8_0 rows cut from the Qwen2.5
/// and Gemma 3 files), plus Q5_1 and Q5_K: the C decoders and their Swift twin against the
/// `gguf` package's dequantization, bit for bit (scripts/fixtures/gguf/make_kquant_fixtures.py).
final class GGUFKQuantBlockTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gguf").path

    struct Expected: Decodable {
        struct Tensor: Decodable { let shape: [Int]; let type: String; let source: String; let values_f32le_base64: String }
        let tensors: [String: Tensor]
    }

    func expectedBits(_ tensor: Expected.Tensor) throws -> [UInt32] {
        let data = try XCTUnwrap(Data(base64Encoded: tensor.values_f32le_base64))
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        }
    }

    func testRealBlocksDecodeLikeTheGGUFPackage() throws {
        let file = try GGUFFile(path: Self.fixture + "/kquant-blocks.gguf")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/kquant-blocks.expected.json")))
        XCTAssertEqual(expected.tensors.count, 9)
        XCTAssertEqual(Set(expected.tensors.values.map(\.type)), ["Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q8_0"])
        for (name, want) in expected.tensors.sorted(by: { $0.key < $1.key }) {
            let info = try XCTUnwrap(file.tensor(name), name)
            XCTAssertEqual(info.shape, want.shape, name)
            XCTAssertEqual(info.type.name, want.type, name)
            let bits = try expectedBits(want)
            XCTAssertEqual(bits.count, info.elementCount, name)
            let bytes = file.bytes(of: info)
            var out = [Float](repeating: .nan, count: info.elementCount)
            GGUFDequantizer.decode(info.type, bytes: bytes, first: 0, count: info.elementCount, into: &out)
            XCTAssertEqual(out.map(\.bitPattern), bits, "\(name) (\(want.source)) C kernel")
            var naive = [Float](repeating: .nan, count: info.elementCount)
            GGUFDequantizer.decodeNaive(info.type, bytes: bytes, first: 0, count: info.elementCount, into: &naive)
            XCTAssertEqual(naive.map(\.bitPattern), bits, "\(name) Swift twin")
            // The second row alone, as a panel decode starts it.
            let width = want.shape[1]
            var row = [Float](repeating: .nan, count: width)
            GGUFDequantizer.decode(info.type, bytes: bytes, first: width, count: width, into: &row)
            XCTAssertEqual(row.map(\.bitPattern), Array(bits[width...]), "\(name) row 1")
        }
    }

    /// The fused matrix-vector products on the same real rows against decode-then-dot in Double:
    /// what decoding runs for every token of these models.
    func testRealBlocksMatvecEqualsDecodeThenDot() throws {
        let file = try GGUFFile(path: Self.fixture + "/kquant-blocks.gguf")
        typealias Matvec = (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
        let kernels: [GGMLType: Matvec] = [.q5_0: lk_matvec_q5_0_f32, .q5_1: lk_matvec_q5_1_f32, .q4_K: lk_matvec_q4_k_f32,
                                           .q5_K: lk_matvec_q5_k_f32, .q6_K: lk_matvec_q6_k_f32, .q8_0: lk_matvec_q8_0_f32]
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for info in file.tensors {
            let kernel = try XCTUnwrap(kernels[info.type], info.name)
            let (rows, columns) = (info.shape[0], info.shape[1])
            let x = (0..<columns).map { Float(sin(Double($0) * 0.37)) }
            var decoded = [Float](repeating: 0, count: info.elementCount)
            GGUFDequantizer.decodeNaive(info.type, bytes: file.bytes(of: info), first: 0, count: info.elementCount, into: &decoded)
            for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
                _ = lk_isa_set_limit(level)
                var y = [Float](repeating: .nan, count: rows)
                kernel(file.bytes(of: info).baseAddress, rows, columns / (info.type.blockGeometry?.elements ?? 1), x, &y)
                for r in 0..<rows {
                    let row = decoded[(r * columns)..<((r + 1) * columns)]
                    let exact = zip(row, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let magnitude = zip(row, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    XCTAssertEqual(Double(y[r]), exact, accuracy: 1e-5 * magnitude, "\(info.name) \(String(cString: lk_isa_name(level))) row \(r)")
                }
            }
        }
    }
}
