import CKernels
import XCTest

/// The many-vector block products (`lk_matmul_*`): every instruction set against the scalar
/// twin (the matrix-vector twins vector by vector), and the twin against decode-then-dot in
/// Double, on vector counts below, at and past a tile (8 with AVX2, 16 with AVX-512), odd row
/// and block counts, and strides wider than a row (nothing outside the outputs is written).
final class BlockMatmulTests: XCTestCase {
    typealias Matmul = (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, Int, Int, UnsafeMutablePointer<Float>?, Int) -> Void
    typealias Decode = (UnsafeRawPointer?, Int, UnsafeMutablePointer<Float>?) -> Void

    struct Kind {
        let name: String, blockElements: Int, blockBytes: Int, scaleOffsets: [Int]
        let decode: Decode, matmul: Matmul, twin: Matmul
    }

    let kinds: [Kind] = [
        Kind(name: "q8_0", blockElements: 32, blockBytes: 34, scaleOffsets: [0], decode: lk_dequant_q8_0,
             matmul: lk_matmul_q8_0_f32, twin: lk_matmul_q8_0_f32_scalar),
        Kind(name: "q4_0", blockElements: 32, blockBytes: 18, scaleOffsets: [0], decode: lk_dequant_q4_0,
             matmul: lk_matmul_q4_0_f32, twin: lk_matmul_q4_0_f32_scalar),
        Kind(name: "q4_1", blockElements: 32, blockBytes: 20, scaleOffsets: [0, 2], decode: lk_dequant_q4_1,
             matmul: lk_matmul_q4_1_f32, twin: lk_matmul_q4_1_f32_scalar),
        Kind(name: "q5_0", blockElements: 32, blockBytes: 22, scaleOffsets: [0], decode: lk_dequant_q5_0,
             matmul: lk_matmul_q5_0_f32, twin: lk_matmul_q5_0_f32_scalar),
        Kind(name: "q5_1", blockElements: 32, blockBytes: 24, scaleOffsets: [0, 2], decode: lk_dequant_q5_1,
             matmul: lk_matmul_q5_1_f32, twin: lk_matmul_q5_1_f32_scalar),
        Kind(name: "q4_k", blockElements: 256, blockBytes: 144, scaleOffsets: [0, 2], decode: lk_dequant_q4_k,
             matmul: lk_matmul_q4_k_f32, twin: lk_matmul_q4_k_f32_scalar),
        Kind(name: "q5_k", blockElements: 256, blockBytes: 176, scaleOffsets: [0, 2], decode: lk_dequant_q5_k,
             matmul: lk_matmul_q5_k_f32, twin: lk_matmul_q5_k_f32_scalar),
        Kind(name: "q6_k", blockElements: 256, blockBytes: 210, scaleOffsets: [208], decode: lk_dequant_q6_k,
             matmul: lk_matmul_q6_k_f32, twin: lk_matmul_q6_k_f32_scalar),
    ]

    func blocks(_ kind: Kind, count: Int, seed: UInt64) -> [UInt8] {
        seededBlocks(blockBytes: kind.blockBytes, scaleOffsets: kind.scaleOffsets, count: count, seed: seed)
    }

    func testManyVectorProductsEqualTwinsAndDecodeThenDot() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in kinds {
            let shapes = kind.blockElements == 32 ? [(3, 1), (5, 2), (7, 19), (2, 65)] : [(3, 1), (5, 2), (2, 3)]
            for (rows, count) in shapes {
                for vectors in [1, 2, 3, 5, 8, 9, 16, 17, 33] {
                    check(kind, rows: rows, count: count, vectors: vectors)
                }
            }
            check(kind, rows: 0, count: 2, vectors: 3)
            check(kind, rows: 2, count: 1, vectors: 0)
        }
    }

    /// With AVX-512 and 12 or more vectors, the 32-weight block types take rows two at a time
    /// (one x load feeding both rows); each (row, vector) sum must still take the FMAs of the
    /// one-row tiles in the same order, so a call over all rows gives the bits of one call per
    /// row (which takes the one-row tiles), and writes nothing else.
    func testRowPairsEqualOneRowAtATimeBitForBit() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in kinds where kind.blockElements == 32 {
            for (rows, count) in [(2, 1), (3, 2), (5, 7), (8, 3)] {
                for vectors in [12, 13, 16, 17, 33] {
                    let columns = 32 * count, ldx = columns + 3, ldy = rows + 2
                    let shape = "\(kind.name) \(rows)×\(count) blocks, \(vectors) vectors"
                    let w = blocks(kind, count: rows * count, seed: UInt64(rows * 7919 + count * 31 + vectors))
                    let x = seededBlockInputs(vectors * ldx, seed: UInt64(vectors * 17 + count))
                    var together = [Float](repeating: .nan, count: vectors * ldy + 1)
                    var alone = together
                    w.withUnsafeBytes { kind.matmul($0.baseAddress, rows, count, x, vectors, ldx, &together, ldy) }
                    w.withUnsafeBytes { raw in
                        alone.withUnsafeMutableBufferPointer { y in
                            for r in 0..<rows {
                                kind.matmul(raw.baseAddress! + r * count * kind.blockBytes, 1, count, x, vectors, ldx, y.baseAddress! + r, ldy)
                            }
                        }
                    }
                    XCTAssertEqual(together.map(\.bitPattern), alone.map(\.bitPattern), shape)
                    XCTAssertFalse(together[0].isNaN, shape)
                }
            }
        }
    }

    func check(_ kind: Kind, rows: Int, count: Int, vectors: Int) {
        let columns = kind.blockElements * count, ldx = columns + 3, ldy = rows + 2
        let shape = "\(kind.name) \(rows)×\(count) blocks, \(vectors) vectors"
        let w = blocks(kind, count: rows * count, seed: UInt64(rows * 1000 + count * 10 + vectors) &+ UInt64(kind.blockBytes))
        let x = seededBlockInputs(max(1, vectors * ldx), seed: UInt64(count * 100 + vectors))
        var decoded = [Float](repeating: 0, count: max(1, rows * columns))
        w.withUnsafeBytes { kind.decode($0.baseAddress, rows * count, &decoded) }
        var twin = [Float](repeating: .nan, count: max(1, vectors * ldy))
        w.withUnsafeBytes { kind.twin($0.baseAddress, rows, count, x, vectors, ldx, &twin, ldy) }
        var tolerance = [Double](repeating: 0, count: max(1, vectors * ldy))
        for v in 0..<vectors {
            for r in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for j in 0..<columns {
                    let p = Double(decoded[r * columns + j]) * Double(x[v * ldx + j])
                    exact += p
                    magnitude += abs(p)
                }
                tolerance[v * ldy + r] = 1e-5 * magnitude + 1e-30
                XCTAssertEqual(Double(twin[v * ldy + r]), exact, accuracy: tolerance[v * ldy + r], "\(shape): twin, vector \(v), row \(r)")
            }
        }
        for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
            _ = lk_isa_set_limit(level)
            let isa = String(cString: lk_isa_name(level))
            var fast = [Float](repeating: .nan, count: vectors * ldy + 1)
            w.withUnsafeBytes { kind.matmul($0.baseAddress, rows, count, x, vectors, ldx, &fast, ldy) }
            for v in 0..<vectors {
                for r in 0..<ldy {
                    let value = fast[v * ldy + r]
                    if r < rows {
                        XCTAssertEqual(Double(value), Double(twin[v * ldy + r]), accuracy: tolerance[v * ldy + r],
                                       "\(shape) \(isa): vector \(v), row \(r)")
                    } else {
                        XCTAssertTrue(value.isNaN, "\(shape) \(isa): wrote vector \(v)'s padding row \(r)")
                    }
                }
            }
            XCTAssertTrue(fast[vectors * ldy].isNaN, "\(shape) \(isa): wrote past the last vector")
        }
    }
}
