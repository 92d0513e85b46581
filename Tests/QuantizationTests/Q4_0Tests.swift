import Foundation
import Quantization
import TensorCore
import XCTest

/// Q4_0 encoding is byte-identical to the `gguf` package's quantizer
/// (scripts/fixtures/quant/make_q4_0_fixture.py), and decodes to its dequantized values.
final class Q4_0Tests: XCTestCase {
    struct Fixture: Decodable { let shape: [Int]; let values: [Float]; let blocks_hex: String; let dequantized: [Float] }

    func testEncodingMatchesGGUFBytesAndDecodes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/q4_0.json")
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let matrix = Q4_0Matrix(quantizing: Tensor(shape: f.shape, scalars: f.values))
        let expected = stride(from: 0, to: f.blocks_hex.count, by: 2).map { i -> UInt8 in
            let start = f.blocks_hex.index(f.blocks_hex.startIndex, offsetBy: i)
            return UInt8(f.blocks_hex[start...f.blocks_hex.index(after: start)], radix: 16) ?? 0
        }
        XCTAssertEqual(matrix.blocks.count, expected.count)
        for (i, (ours, theirs)) in zip(matrix.blocks, expected).enumerated() where ours != theirs {
            XCTFail("byte \(i) (block \(i / 18), row \(i / 18 / (f.shape[1] / 32))): \(ours) vs gguf's \(theirs)")
            break
        }
        var decoded = [Float](repeating: .nan, count: f.values.count)
        decoded.withUnsafeMutableBufferPointer { matrix.decodeRows(0..<f.shape[0], into: $0.baseAddress!) }
        XCTAssertEqual(decoded, f.dequantized)
        var row5 = [Float](repeating: .nan, count: f.shape[1])
        row5.withUnsafeMutableBufferPointer { matrix.decodeRows(5..<6, into: $0.baseAddress!) }
        XCTAssertEqual(row5, Array(f.dequantized[(5 * f.shape[1])..<(6 * f.shape[1])]))
        XCTAssertEqual(matrix.encodedBytes, f.values.count / 32 * 18)
    }
}
