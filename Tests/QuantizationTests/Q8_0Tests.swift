import Foundation
import Quantization
import TensorCore
import XCTest

/// Q8_0 encoding is byte-identical to the `gguf` package's quantizer
/// (scripts/fixtures/quant/make_q8_0_fixture.py), and decodes to its dequantized values.
final class Q8_0Tests: XCTestCase {
    struct Fixture: Decodable { let shape: [Int]; let values: [Float]; let blocks_hex: String; let dequantized: [Float] }

    func testEncodingMatchesGGUFBytesAndDecodes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/q8_0.json")
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let matrix = Q8_0Matrix(quantizing: Tensor(shape: f.shape, scalars: f.values))
        let expected = stride(from: 0, to: f.blocks_hex.count, by: 2).map { i -> UInt8 in
            let start = f.blocks_hex.index(f.blocks_hex.startIndex, offsetBy: i)
            return UInt8(f.blocks_hex[start...f.blocks_hex.index(after: start)], radix: 16) ?? 0
        }
        XCTAssertEqual(matrix.blocks, expected)
        var decoded = [Float](repeating: .nan, count: f.values.count)
        decoded.withUnsafeMutableBufferPointer { matrix.decodeRows(0..<f.shape[0], into: $0.baseAddress!) }
        XCTAssertEqual(decoded, f.dequantized)
        // A row range decodes the same values as the whole.
        var row3 = [Float](repeating: .nan, count: f.shape[1])
        row3.withUnsafeMutableBufferPointer { matrix.decodeRows(3..<4, into: $0.baseAddress!) }
        XCTAssertEqual(row3, Array(f.dequantized[(3 * f.shape[1])..<(4 * f.shape[1])]))
        XCTAssertEqual(matrix.encodedBytes, f.values.count / 32 * 34)
    }
}
