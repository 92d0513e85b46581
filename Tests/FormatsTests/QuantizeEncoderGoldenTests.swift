import Foundation
import Formats
import XCTest

/// Lorikeet's block encoders write the bytes ggml's own quantizers write (fixtures from
/// `ggml_quantize_chunk` in llama-cpp-python's libggml-base, no importance matrix:
/// scripts/fixtures/quant/make_quantize_goldens.py), and splitting a tensor's rows over threads
/// changes no byte.
final class QuantizeEncoderGoldenTests: XCTestCase {
    struct Fixture: Decodable {
        let generator: String
        let rows: Int, columns: Int
        let notes: [String]
        let input_f32le_base64: String
        let expected_base64: [String: String]
    }

    static let types: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K]

    func fixture() throws -> (Fixture, [Float]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/quantize/goldens.json")
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let raw = try XCTUnwrap(Data(base64Encoded: f.input_f32le_base64))
        let values = raw.withUnsafeBytes { bytes in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        XCTAssertEqual(values.count, f.rows * f.columns)
        return (f, values)
    }

    func testEncodersEqualGGMLByteForByte() throws {
        let (f, values) = try fixture()
        for type in Self.types {
            let expected = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(f.expected_base64[type.name])))
            let bytes = try values.withUnsafeBufferPointer { try type.encode($0, columns: f.columns, tensor: "golden", threads: 1) }
            XCTAssertEqual(bytes.count, expected.count, type.name)
            guard let (elements, blockBytes) = type.blockGeometry else { continue }
            // Report the first differing block per row, with the row's note, rather than one giant diff.
            let rowBytes = f.columns / elements * blockBytes
            for row in 0..<f.rows {
                let range = (row * rowBytes)..<((row + 1) * rowBytes)
                guard range.upperBound <= min(bytes.count, expected.count) else { break }
                if Array(bytes[range]) != Array(expected[range]) {
                    let first = range.first { bytes[$0] != expected[$0] } ?? range.lowerBound
                    XCTFail("\(type.name) row \(row) (\(f.notes[row])): first difference at byte \(first - range.lowerBound) of the row, block \((first - range.lowerBound) / blockBytes)")
                }
            }
        }
    }

    /// The threaded encoder (rows split over Parallel's threads) equals one call over all rows,
    /// for row counts that do not split evenly.
    func testThreadedEncodingEqualsOneCall() throws {
        let (f, values) = try fixture()
        for rows in [1, 3, 7, f.rows] {
            let slice = Array(values[0..<(rows * f.columns)])
            for type in Self.types + [.f16, .f32] {
                try slice.withUnsafeBufferPointer { x in
                    let one = try type.encode(x, columns: f.columns, tensor: "t", threads: 1)
                    let threaded = try type.encode(x, columns: f.columns, tensor: "t")
                    XCTAssertEqual(one, threaded, "\(type.name) rows \(rows)")
                }
            }
        }
    }

    /// F16 encoding is Swift's Float16 rounding (nearest even), including subnormals and overflow.
    func testF16EncodingMatchesFloat16() throws {
        let values: [Float] = [0, -0, 1, 65504, 65519.99, 65520, 1e-8, 2.9802322e-8, 5.9604645e-8, -3.0e-5, 0.1, 1.0009766, 1.0014648]
        let bytes = try values.withUnsafeBufferPointer { try GGMLType.f16.encode($0, columns: 1, tensor: "t") }
        for (i, v) in values.enumerated() {
            XCTAssertEqual(UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8, Float16(v).bitPattern, "\(v)")
        }
    }

    func testWidthThatHoldsNoWholeBlockIsATypedError() {
        let values = [Float](repeating: 1, count: 2 * 96)
        XCTAssertThrowsError(try values.withUnsafeBufferPointer { try GGMLType.q4_K.encode($0, columns: 96, tensor: "blk.0.attn_q.weight") }) { error in
            XCTAssertTrue("\(error)".contains("blk.0.attn_q.weight"), "\(error)")
        }
        XCTAssertThrowsError(try values.withUnsafeBufferPointer { try GGMLType.q3_K.encode($0, columns: 96, tensor: "x") })
    }
}
