import Foundation
@testable import Quantization
import TensorCore
import TestSupport
import XCTest

/// NF4 against bitsandbytes (fixtures from scripts/fixtures/nf4/make_nf4_fixtures.py): codes,
/// scales, double-quantization state and dequantized values must be bit-identical.
final class NF4Tests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/nf4")

    struct Index: Decodable {
        struct Case: Decodable { let shape: [Int]; let offset: Float; let blocksize: Int; let blocksize2: Int }
        let cases: [String: Case]
        let dynamic_map: [Float]
        let nf4_code: [Float]
    }

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: Data(contentsOf: directory.appendingPathComponent("index.json")))
    }

    static func floats(_ name: String) throws -> [Float] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(name))) }

    func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    func testTablesEqualBitsandbytes() throws {
        let index = try Self.index()
        XCTAssertEqual(bits(NF4Codebook.values), bits(index.nf4_code))
        XCTAssertEqual(bits(DynamicMap.values), bits(index.dynamic_map))
    }

    func testEveryCaseIsBitIdentical() throws {
        let index = try Self.index()
        XCTAssertEqual(index.cases.count, 5)
        for (name, c) in index.cases.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(c.blocksize, NF4Matrix.blockSize)
            XCTAssertEqual(c.blocksize2, NF4Matrix.scaleBlockSize)
            let input = Tensor(shape: c.shape, scalars: try Self.floats("\(name).input.f32"))

            let plain = NF4Matrix(quantizing: input, doubleQuantize: false)
            XCTAssertEqual(plain.packed, try Self.bytes("\(name).packed.u8"), "\(name): packed codes")
            guard case .float(let absmax) = plain.scales else { return XCTFail("\(name): expected plain scales") }
            XCTAssertEqual(bits(absmax), bits(try Self.floats("\(name).absmax.f32")), "\(name): absmax")

            // Our offset is the exactly rounded mean; bitsandbytes' is torch's Float32 mean.
            let ours = NF4Matrix(quantizing: input)
            XCTAssertEqual(ours.packed, plain.packed)
            guard case .doubleQuantized(_, _, let ourOffset) = ours.scales else { return XCTFail("\(name): expected double quantization") }
            XCTAssertLessThanOrEqual(abs(ourOffset - c.offset), c.offset.ulp, "\(name): offset \(ourOffset) vs \(c.offset)")

            // Given bitsandbytes' offset, every stored bit and every decoded value is identical.
            let double = NF4Matrix(rows: c.shape[0], columns: c.shape[1], packed: plain.packed,
                                   scales: NF4Matrix.doubleQuantizedScales(absmax, offset: c.offset))
            guard case .doubleQuantized(let codes, let scales, _) = double.scales else { return XCTFail("\(name): expected double quantization") }
            let want = try Self.bytes("\(name).qabsmax.u8")
            XCTAssertEqual(codes, want, "\(name): 8-bit scale codes")
            XCTAssertEqual(bits(scales), bits(try Self.floats("\(name).absmax2.f32")), "\(name): second-level scales")

            let n = input.count
            var decoded = [Float](repeating: .nan, count: n)
            double.decodeElements(0..<n, into: &decoded)
            XCTAssertEqual(bits(decoded), bits(try Self.floats("\(name).dequant.f32")), "\(name): dequantized values")
        }
    }

    /// Row panels decode to the same values as the whole matrix, wherever they start.
    func testRowPanelsAgreeWithWholeDecode() throws {
        let w = Fixtures.tensor([13, 37], seed: 3, requiresGrad: false)  // blocks straddle rows, odd element count
        let m = NF4Matrix(quantizing: w)
        var whole = [Float](repeating: 0, count: w.count)
        m.decodeElements(0..<w.count, into: &whole)
        for range in [0..<1, 3..<7, 12..<13, 0..<13] {
            var part = [Float](repeating: 0, count: range.count * 37)
            m.decodeRows(range, into: &part)
            XCTAssertEqual(part, Array(whole[(range.lowerBound * 37)..<(range.upperBound * 37)]), "rows \(range)")
        }
        XCTAssertLessThan(Double(m.encodedBytes) / Double(w.count), 0.6)
    }

    /// A QLoRA layer over NF4 computes with exactly the dequantized weight.
    func testQuantizedLinearOverNF4MatchesDenseOverDequantized() {
        let w = Fixtures.tensor([70, 64], seed: 4, requiresGrad: false)
        let m = NF4Matrix(quantizing: w)
        var dq = [Float](repeating: 0, count: w.count)
        m.decodeElements(0..<w.count, into: &dq)
        let x = Fixtures.tensor([3, 64], seed: 5, requiresGrad: false)
        let dense = DenseLinear(weight: Tensor(shape: [70, 64], scalars: dq)).forward(x)
        assertClose(QuantizedLinear(weight: m, panelRows: 16).forward(x), dense.scalars, atol: 1e-5)
    }
}

/// The 8-bit rounding of the double-quantized scales across the whole range: every point where
/// bitsandbytes' kernel moves to the next code (scripts/fixtures/nf4/probe_dynamic_rounding.py).
final class DynamicMapRoundingTests: XCTestCase {
    struct Points: Decodable {
        struct Point: Decodable { let code: Int; let first_value: Float }
        let switch_points: [Point]
    }

    func testEverySwitchPointMatchesBitsandbytes() throws {
        let url = NF4Tests.directory.appendingPathComponent("dynamic_switch_points.json")
        let points = try JSONDecoder().decode(Points.self, from: Data(contentsOf: url)).switch_points
        XCTAssertGreaterThan(points.count, 200)
        for p in points {
            XCTAssertEqual(Int(DynamicMap.code(of: p.first_value)), p.code, "first value \(p.first_value) of code \(p.code)")
            XCTAssertLessThan(Int(DynamicMap.code(of: p.first_value.nextDown)), p.code, "just below code \(p.code)")
        }
        // Codes that bitsandbytes never produces (entries closer together than its rounding
        // resolution) are never produced here either.
        let produced = Set(points.map(\.code) + [0])
        let sweep = stride(from: Float(-1), through: 1, by: 1e-6).map { Int(DynamicMap.code(of: $0)) }
        XCTAssertTrue(Set(sweep).isSubset(of: produced))
    }
}
