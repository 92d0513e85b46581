import CKernels
import XCTest

/// The block products over 8-bit activations (`lk_quantize_q8`, `lk_matvec_*_q8`,
/// `lk_matmul_*_q8`): every instruction set gives the scalar twin's bits, the many-vector
/// kernels give each vector the one-vector kernel's bits, the twin equals decode-then-dot of
/// the rounded activations in Double (so the codes are read as ggml lays them out), and the
/// distance from the f32 product stays within what rounding x to 8 bits can cause.
final class Q8BlockDotTests: XCTestCase {
    typealias Matvec = (UnsafeRawPointer?, Int, Int, UnsafeRawPointer?, UnsafeMutablePointer<Float>?) -> Void
    typealias Matmul = (UnsafeRawPointer?, Int, Int, UnsafeRawPointer?, Int, UnsafeMutablePointer<Float>?, Int) -> Void
    typealias F32Matvec = (UnsafeRawPointer?, Int, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
    typealias Decode = (UnsafeRawPointer?, Int, UnsafeMutablePointer<Float>?) -> Void

    struct Kind {
        let name: String, blockElements: Int, blockBytes: Int, scaleOffsets: [Int]
        let decode: Decode, f32: F32Matvec
        let matvec: Matvec, matvecTwin: Matvec, matmul: Matmul, matmulTwin: Matmul
    }

    let kinds: [Kind] = [
        Kind(name: "q5_0", blockElements: 32, blockBytes: 22, scaleOffsets: [0], decode: lk_dequant_q5_0, f32: lk_matvec_q5_0_f32,
             matvec: lk_matvec_q5_0_q8, matvecTwin: lk_matvec_q5_0_q8_scalar, matmul: lk_matmul_q5_0_q8, matmulTwin: lk_matmul_q5_0_q8_scalar),
        Kind(name: "q4_k", blockElements: 256, blockBytes: 144, scaleOffsets: [0, 2], decode: lk_dequant_q4_k, f32: lk_matvec_q4_k_f32,
             matvec: lk_matvec_q4_k_q8, matvecTwin: lk_matvec_q4_k_q8_scalar, matmul: lk_matmul_q4_k_q8, matmulTwin: lk_matmul_q4_k_q8_scalar),
        Kind(name: "q6_k", blockElements: 256, blockBytes: 210, scaleOffsets: [208], decode: lk_dequant_q6_k, f32: lk_matvec_q6_k_f32,
             matvec: lk_matvec_q6_k_q8, matvecTwin: lk_matvec_q6_k_q8_scalar, matmul: lk_matmul_q6_k_q8, matmulTwin: lk_matmul_q6_k_q8_scalar),
    ]

    let isas = [LK_ISA_AVX512, LK_ISA_AVX2, LK_ISA_SCALAR]

    /// Activations with what real ones have: mixed magnitudes, an all-zero block, and a block
    /// with one large outlier.
    func activations(_ n: Int, seed: UInt64) -> [Float] {
        var x = seededValues(n, seed: seed, scale: 3)
        for i in 0..<n where (i / 32) % 5 == 1 { x[i] *= 0.01 }
        if n >= 96 {
            for i in 64..<96 { x[i] = 0 }
        }
        if n >= 160 { x[140] = 250 }
        return x
    }

    func quantized(_ x: [Float], twin: Bool = false) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: lk_q8_bytes(x.count))
        out.withUnsafeMutableBytes { (twin ? lk_quantize_q8_scalar : lk_quantize_q8)(x, x.count, $0.baseAddress) }
        return out
    }

    /// Codes, scales and sums of a quantized vector.
    func parts(_ xq: [UInt8], n: Int) -> (q: [Int8], d: [Float], s: [Int32]) {
        xq.withUnsafeBytes { raw in
            let q = (0..<n).map { Int8(bitPattern: raw[$0]) }
            let d = (0..<(n / 32)).map { raw.loadUnaligned(fromByteOffset: n + 4 * $0, as: Float.self) }
            let s = (0..<(n / 32)).map { raw.loadUnaligned(fromByteOffset: n + 4 * (n / 32) + 4 * $0, as: Int32.self) }
            return (q, d, s)
        }
    }

    func testQuantizingRoundsEachBlockToNearestOnEveryISA() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for n in [32, 64, 224, 512] {
            let x = activations(n, seed: UInt64(n))
            let twin = quantized(x, twin: true)
            for isa in isas {
                _ = lk_isa_set_limit(isa)
                XCTAssertEqual(quantized(x), twin, "n \(n), \(String(cString: lk_isa_name(isa)))")
            }
            let (q, d, s) = parts(twin, n: n)
            for b in 0..<(n / 32) {
                let block = b * 32..<(b * 32 + 32)
                let amax = block.map { abs(x[$0]) }.max() ?? 0
                XCTAssertEqual(d[b], amax / 127, "block \(b)")
                XCTAssertEqual(s[b], block.reduce(Int32(0)) { $0 + Int32(q[$1]) }, "block \(b)")
                XCTAssertEqual(block.map { abs(Int(q[$0])) }.max(), amax == 0 ? 0 : 127, "block \(b)")
                let offsets = twin.withUnsafeBytes { raw in
                    (0..<8).map { raw.loadUnaligned(fromByteOffset: n + 8 * (n / 32) + 4 * (8 * b + $0), as: Int32.self) }
                }
                XCTAssertEqual(offsets, (0..<8).map { l in -16 * (0..<4).reduce(Int32(0)) { $0 + Int32(q[b * 32 + 4 * l + $1]) } }, "block \(b)")
                for i in block {
                    // round to nearest: |x − q·d| ≤ d/2 (plus the rounding of 1/d and x/d)
                    XCTAssertLessThanOrEqual(abs(Double(x[i]) - Double(q[i]) * Double(d[b])), Double(d[b]) * 0.500001, "value \(i)")
                }
            }
        }
    }

    func testProductsEqualTheTwinBitForBitOnEveryISA() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for kind in kinds {
            let shapes = kind.blockElements == 32 ? [(3, 1), (5, 2), (7, 19), (2, 65)] : [(3, 1), (5, 2), (2, 3)]
            for (rows, count) in shapes {
                let n = kind.blockElements * count
                let w = seededBlocks(blockBytes: kind.blockBytes, scaleOffsets: kind.scaleOffsets, count: rows * count,
                                     seed: UInt64(rows * 131 + count))
                for vectors in [1, 2, 3, 4, 5, 9, 17] {
                    let shape = "\(kind.name) \(rows)×\(count), \(vectors) vectors"
                    let xq = (0..<vectors).flatMap { quantized(activations(n, seed: UInt64(vectors * 7 + $0))) }
                    let ldy = rows + 2
                    var twin = [Float](repeating: .nan, count: vectors * ldy)
                    w.withUnsafeBytes { wb in xq.withUnsafeBytes { kind.matmulTwin(wb.baseAddress, rows, count, $0.baseAddress, vectors, &twin, ldy) } }
                    for isa in isas {
                        _ = lk_isa_set_limit(isa)
                        let tag = shape + ", " + String(cString: lk_isa_name(isa))
                        var many = [Float](repeating: .nan, count: vectors * ldy)
                        w.withUnsafeBytes { wb in xq.withUnsafeBytes { kind.matmul(wb.baseAddress, rows, count, $0.baseAddress, vectors, &many, ldy) } }
                        XCTAssertEqual(many.map(\.bitPattern), twin.map(\.bitPattern), tag)
                        for v in 0..<vectors {
                            var one = [Float](repeating: .nan, count: rows)
                            w.withUnsafeBytes { wb in
                                xq.withUnsafeBytes { kind.matvec(wb.baseAddress, rows, count, $0.baseAddress! + v * lk_q8_bytes(n), &one) }
                            }
                            XCTAssertEqual(one.map(\.bitPattern), Array(twin[(v * ldy)..<(v * ldy + rows)]).map(\.bitPattern), tag + ", vector \(v)")
                        }
                        XCTAssertTrue(twin[rows].isNaN && twin[rows + 1].isNaN, tag + ": wrote past its rows")
                    }
                }
            }
        }
    }

    /// The twin against Σ w·(q·d) in Double over the weights as lk_dequant_* decodes them (bit
    /// equal to the `gguf` package's), and against the f32 kernel on the unrounded x within the
    /// bound of rounding x: |Σ w·(x − q·d)| ≤ Σ |w|·d/2.
    func testTwinEqualsDecodeThenDotAndStaysWithinTheRoundingOfX() {
        for kind in kinds {
            let shapes = kind.blockElements == 32 ? [(4, 1), (3, 7), (2, 152)] : [(4, 1), (3, 4)]
            for (rows, count) in shapes {
                let n = kind.blockElements * count
                let w = seededBlocks(blockBytes: kind.blockBytes, scaleOffsets: kind.scaleOffsets, count: rows * count,
                                     seed: UInt64(rows * 17 + count))
                var decoded = [Float](repeating: 0, count: rows * n)
                w.withUnsafeBytes { kind.decode($0.baseAddress, rows * count, &decoded) }
                let x = activations(n, seed: UInt64(count))
                let xq = quantized(x)
                let (q, d, _) = parts(xq, n: n)
                var got = [Float](repeating: 0, count: rows), exact = got
                w.withUnsafeBytes { wb in xq.withUnsafeBytes { kind.matvecTwin(wb.baseAddress, rows, count, $0.baseAddress, &got) } }
                w.withUnsafeBytes { kind.f32($0.baseAddress, rows, count, x, &exact) }
                var total = 0.0
                for r in 0..<rows {
                    var reference = 0.0, magnitude = 0.0, bound = 0.0
                    for i in 0..<n {
                        let wi = Double(decoded[r * n + i]), xi = Double(q[i]) * Double(d[i / 32])
                        reference += wi * xi
                        magnitude += abs(wi * xi)
                        bound += abs(wi) * Double(d[i / 32]) / 2
                    }
                    let tag = "\(kind.name) \(rows)×\(count), row \(r)"
                    XCTAssertEqual(Double(got[r]), reference, accuracy: 2e-6 * magnitude + 1e-30, tag)
                    XCTAssertLessThanOrEqual(abs(Double(got[r]) - Double(exact[r])), bound * 1.001 + 4e-6 * magnitude, tag)
                    total += magnitude
                }
                XCTAssertGreaterThan(total, 0, "\(kind.name) \(rows)×\(count)")  // not all rows zero-scaled
            }
        }
    }
}
