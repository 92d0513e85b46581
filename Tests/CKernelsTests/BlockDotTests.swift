import CKernels
import XCTest

/// The fused ggml block dot products: every instruction set against the scalar twin, and the
/// twin against decode-then-dot in Double (the decoders are bit-tested against the gguf package).
final class BlockDotTests: XCTestCase {
    typealias Dot = (UnsafeRawPointer?, UnsafePointer<Float>?, Int) -> Float
    typealias Decode = (UnsafeRawPointer?, Int, UnsafeMutablePointer<Float>?) -> Void
    typealias Matvec = (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void

    struct Kind {
        let name: String, blockBytes: Int, scaleCount: Int
        let dot: Dot, twin: Dot, decode: Decode
        let matvec: Matvec, matvecTwin: Matvec
    }

    /// The kinds with a many-row kernel only: Q5_0/Q5_1 (32 weights a block) and the K-quants
    /// (256 a super-block), with the byte offsets of their half-precision scales.
    struct MatvecKind {
        let name: String, blockElements: Int, blockBytes: Int, scaleOffsets: [Int]
        let decode: Decode
        let matvec: Matvec, matvecTwin: Matvec
    }

    var matvecKinds: [MatvecKind] { [
        MatvecKind(name: "q5_0", blockElements: 32, blockBytes: 22, scaleOffsets: [0], decode: lk_dequant_q5_0,
                   matvec: lk_matvec_q5_0_f32, matvecTwin: lk_matvec_q5_0_f32_scalar),
        MatvecKind(name: "q5_1", blockElements: 32, blockBytes: 24, scaleOffsets: [0, 2], decode: lk_dequant_q5_1,
                   matvec: lk_matvec_q5_1_f32, matvecTwin: lk_matvec_q5_1_f32_scalar),
        MatvecKind(name: "q4_k", blockElements: 256, blockBytes: 144, scaleOffsets: [0, 2], decode: lk_dequant_q4_k,
                   matvec: lk_matvec_q4_k_f32, matvecTwin: lk_matvec_q4_k_f32_scalar),
        MatvecKind(name: "q5_k", blockElements: 256, blockBytes: 176, scaleOffsets: [0, 2], decode: lk_dequant_q5_k,
                   matvec: lk_matvec_q5_k_f32, matvecTwin: lk_matvec_q5_k_f32_scalar),
        MatvecKind(name: "q6_k", blockElements: 256, blockBytes: 210, scaleOffsets: [208], decode: lk_dequant_q6_k,
                   matvec: lk_matvec_q6_k_f32, matvecTwin: lk_matvec_q6_k_f32_scalar),
    ] }

    var kinds: [Kind] { [
        Kind(name: "q8_0", blockBytes: 34, scaleCount: 1, dot: lk_dot_q8_0_f32, twin: lk_dot_q8_0_f32_scalar, decode: lk_dequant_q8_0,
             matvec: lk_matvec_q8_0_f32, matvecTwin: lk_matvec_q8_0_f32_scalar),
        Kind(name: "q4_0", blockBytes: 18, scaleCount: 1, dot: lk_dot_q4_0_f32, twin: lk_dot_q4_0_f32_scalar, decode: lk_dequant_q4_0,
             matvec: lk_matvec_q4_0_f32, matvecTwin: lk_matvec_q4_0_f32_scalar),
        Kind(name: "q4_1", blockBytes: 20, scaleCount: 2, dot: lk_dot_q4_1_f32, twin: lk_dot_q4_1_f32_scalar, decode: lk_dequant_q4_1,
             matvec: lk_matvec_q4_1_f32, matvecTwin: lk_matvec_q4_1_f32_scalar),
    ] }

    /// Random codes with half-precision scales of mixed sign and size (one block's first scale
    /// is a subnormal half, another's is zero).
    func blocks(_ kind: Kind, count: Int, seed: UInt64) -> [UInt8] {
        blocks(blockBytes: kind.blockBytes, scaleOffsets: (0..<kind.scaleCount).map { 2 * $0 }, count: count, seed: seed)
    }

    func blocks(blockBytes: Int, scaleOffsets: [Int], count: Int, seed: UInt64) -> [UInt8] {
        seededBlocks(blockBytes: blockBytes, scaleOffsets: scaleOffsets, count: count, seed: seed)
    }

    func inputs(_ n: Int, seed: UInt64) -> [Float] { seededBlockInputs(n, seed: seed) }

    func testTwinsEqualDecodeThenDotAndSIMDEqualsTwins() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in kinds {
            for count in [0, 1, 2, 3, 4, 5, 18, 64, 97] {
                let w = blocks(kind, count: count, seed: UInt64(count) &* 31 &+ UInt64(kind.blockBytes))
                let x = inputs(32 * count, seed: UInt64(count) + 7)
                var decoded = [Float](repeating: 0, count: 32 * count)
                w.withUnsafeBytes { kind.decode($0.baseAddress, count, &decoded) }
                let exact = zip(decoded, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let magnitude = zip(decoded, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                let tolerance = 1e-5 * magnitude + 1e-30
                let twin = w.withUnsafeBytes { kind.twin($0.baseAddress, x, count) }
                XCTAssertEqual(Double(twin), exact, accuracy: tolerance, "\(kind.name) twin, \(count) blocks")
                for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
                    _ = lk_isa_set_limit(level)
                    let fast = w.withUnsafeBytes { kind.dot($0.baseAddress, x, count) }
                    XCTAssertEqual(Double(fast), Double(twin), accuracy: tolerance,
                                   "\(kind.name) \(String(cString: lk_isa_name(level))), \(count) blocks")
                }
            }
        }
    }

    /// The many-row kernels: every row of every instruction set against the twin, the twin
    /// against decode-then-dot in Double; odd row counts, one-block rows, and rows longer than
    /// the 64-block segments over which Q4_1 sums x once.
    func testMatvecRowsEqualTwinsAndDecodeThenDot() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in kinds {
            for (rows, count) in [(0, 3), (2, 0), (1, 1), (3, 1), (5, 2), (7, 18), (4, 63), (3, 64), (3, 65), (2, 129)] {
                let w = blocks(kind, count: rows * count, seed: UInt64(rows * 1000 + count) &+ UInt64(kind.blockBytes))
                let x = inputs(32 * count, seed: UInt64(count) + 5)
                var decoded = [Float](repeating: 0, count: 32 * count * rows)
                w.withUnsafeBytes { kind.decode($0.baseAddress, rows * count, &decoded) }
                var twin = [Float](repeating: .nan, count: rows)
                w.withUnsafeBytes { kind.matvecTwin($0.baseAddress, rows, count, x, &twin) }
                var tolerances: [Double] = []
                for r in 0..<rows {
                    let row = decoded[(r * 32 * count)..<((r + 1) * 32 * count)]
                    let exact = zip(row, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let magnitude = zip(row, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    tolerances.append(1e-5 * magnitude + 1e-30)
                    XCTAssertEqual(Double(twin[r]), exact, accuracy: tolerances[r], "\(kind.name) twin, row \(r) of \(rows)×\(count) blocks")
                }
                for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
                    _ = lk_isa_set_limit(level)
                    var fast = [Float](repeating: .nan, count: rows + 1)  // one past the end must stay untouched
                    w.withUnsafeBytes { kind.matvec($0.baseAddress, rows, count, x, &fast) }
                    for r in 0..<rows {
                        XCTAssertEqual(Double(fast[r]), Double(twin[r]), accuracy: tolerances[r],
                                       "\(kind.name) \(String(cString: lk_isa_name(level))), row \(r) of \(rows)×\(count) blocks")
                    }
                    XCTAssertTrue(fast[rows].isNaN, "\(kind.name) \(String(cString: lk_isa_name(level))) wrote past \(rows) rows")
                }
            }
        }
    }

    /// Q5_0, Q5_1 and the K-quants: the same checks, on row counts that are not multiples of
    /// anything, one-block rows, odd block counts (the two-accumulator loops' tails) and rows
    /// longer than a segment of x's shared sums (64 blocks of 32, 8 super-blocks of 256).
    func testFiveBitAndKQuantMatvecRowsEqualTwinsAndDecodeThenDot() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in matvecKinds {
            let shapes = kind.blockElements == 32
                ? [(0, 3), (2, 0), (1, 1), (3, 1), (5, 2), (7, 18), (4, 63), (3, 64), (3, 65), (2, 129)]
                : [(0, 2), (2, 0), (1, 1), (3, 1), (5, 2), (7, 3), (3, 7), (3, 8), (3, 9), (2, 17)]
            for (rows, count) in shapes {
                let n = kind.blockElements * count
                let w = blocks(blockBytes: kind.blockBytes, scaleOffsets: kind.scaleOffsets, count: rows * count,
                               seed: UInt64(rows * 1000 + count) &+ UInt64(kind.blockBytes))
                let x = inputs(n, seed: UInt64(count) + 5)
                var decoded = [Float](repeating: 0, count: n * rows)
                w.withUnsafeBytes { kind.decode($0.baseAddress, rows * count, &decoded) }
                var twin = [Float](repeating: .nan, count: rows)
                w.withUnsafeBytes { kind.matvecTwin($0.baseAddress, rows, count, x, &twin) }
                var tolerances: [Double] = []
                for r in 0..<rows {
                    let row = decoded[(r * n)..<((r + 1) * n)]
                    let exact = zip(row, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let magnitude = zip(row, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    tolerances.append(1e-5 * magnitude + 1e-30)
                    XCTAssertEqual(Double(twin[r]), exact, accuracy: tolerances[r], "\(kind.name) twin, row \(r) of \(rows)×\(count) blocks")
                }
                for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
                    _ = lk_isa_set_limit(level)
                    var fast = [Float](repeating: .nan, count: rows + 1)  // one past the end must stay untouched
                    w.withUnsafeBytes { kind.matvec($0.baseAddress, rows, count, x, &fast) }
                    for r in 0..<rows {
                        XCTAssertEqual(Double(fast[r]), Double(twin[r]), accuracy: tolerances[r],
                                       "\(kind.name) \(String(cString: lk_isa_name(level))), row \(r) of \(rows)×\(count) blocks")
                    }
                    XCTAssertTrue(fast[rows].isNaN, "\(kind.name) \(String(cString: lk_isa_name(level))) wrote past \(rows) rows")
                }
            }
        }
    }

    func testHalfPrecisionDotEqualsItsTwinAndExactConversion() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for n in [0, 1, 7, 15, 16, 17, 31, 32, 33, 64, 577] {
            var state = UInt64(n) &+ 11
            let halves: [UInt16] = (0..<n).map { i in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let bits = UInt16(truncatingIfNeeded: state >> 33) & 0x7BFF  // finite: exponent below 31
                return i == 3 ? 0x0001 : bits  // one subnormal
            }
            let x = inputs(n, seed: UInt64(n) + 3)
            let exact = zip(halves, x).reduce(0.0) { $0 + Double(Float(Float16(bitPattern: $1.0))) * Double($1.1) }
            let magnitude = zip(halves, x).reduce(0.0) { $0 + abs(Double(Float(Float16(bitPattern: $1.0))) * Double($1.1)) }
            let tolerance = 1e-5 * magnitude + 1e-30
            let twin = halves.withUnsafeBytes { lk_dot_f16_f32_scalar($0.baseAddress, x, n) }
            XCTAssertEqual(Double(twin), exact, accuracy: tolerance, "f16 twin, n=\(n)")
            for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
                _ = lk_isa_set_limit(level)
                let fast = halves.withUnsafeBytes { lk_dot_f16_f32($0.baseAddress, x, n) }
                XCTAssertEqual(Double(fast), Double(twin), accuracy: tolerance, "f16 \(String(cString: lk_isa_name(level))), n=\(n)")
            }
        }
    }
}
