import CKernels
import Foundation
import XCTest

/// Every SIMD path against its scalar twin, and every twin against Double-precision formulas.
final class CKernelsTests: XCTestCase {
    static let sizes = [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 1000, 1023, 4099]

    /// Seeded values in [-scale, scale].
    func values(_ n: Int, seed: UInt64, scale: Float = 4) -> [Float] {
        seededValues(n, seed: seed, scale: scale)
    }

    /// Runs `body` once per instruction set this CPU supports, restoring the default after.
    func forEachISA(_ body: (lk_isa) -> Void) {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
            XCTAssertEqual(lk_isa_set_limit(level), level)
            body(level)
        }
    }

    func assertNear(_ a: [Float], _ b: [Float], rel: Float, abs absTol: Float = 0, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for i in a.indices where !(abs(a[i] - b[i]) <= absTol + rel * abs(b[i])) {
            return XCTFail("\(what): element \(i) is \(a[i]), expected \(b[i])", file: file, line: line)
        }
    }

    func testDetectionReportsThisCPU() {
        XCTAssertTrue(["scalar", "avx2", "avx512"].contains(String(cString: lk_isa_name(lk_isa_detected()))))
        #if arch(x86_64)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if flags.contains(" avx512f") { XCTAssertEqual(lk_isa_detected(), LK_ISA_AVX512) }
        #endif
    }

    /// The SIMD and scalar paths evaluate the same polynomial; the compiler fuses multiply-adds
    /// differently in each, so results may differ by an ulp or two (2e-6 relative).
    func testSIMDPathsMatchScalarTwinsAtEverySize() {
        forEachISA { level in
            let name = String(cString: lk_isa_name(level))
            for n in Self.sizes {
                let x = values(n, seed: UInt64(n)), y = values(n, seed: UInt64(n) + 99), d = values(n, seed: UInt64(n) + 7, scale: 1)
                var a = [Float](repeating: 0, count: n), b = a
                // Elementwise maps.
                lk_silu_f32(x, &a, n); lk_silu_f32_scalar(x, &b, n)
                assertNear(a, b, rel: 1e-6, abs: 1e-7, "\(name) silu n=\(n)")
                lk_gelu_tanh_f32(x, &a, n); lk_gelu_tanh_f32_scalar(x, &b, n)
                assertNear(a, b, rel: 2e-6, abs: 1e-7, "\(name) gelu n=\(n)")
                lk_swiglu_f32(x, y, &a, n); lk_swiglu_f32_scalar(x, y, &b, n)
                assertNear(a, b, rel: 1e-6, abs: 1e-7, "\(name) swiglu n=\(n)")
                // Accumulating backward passes (start from 1 to see the +=; results near 0 then
                // carry an ulp of 1, hence the absolute tolerance).
                a = [Float](repeating: 1, count: n); b = a
                lk_silu_backward_f32(x, d, &a, n); lk_silu_backward_f32_scalar(x, d, &b, n)
                assertNear(a, b, rel: 2e-6, abs: 3e-7, "\(name) silu backward n=\(n)")
                a = [Float](repeating: 1, count: n); b = a
                lk_gelu_tanh_backward_f32(x, d, &a, n); lk_gelu_tanh_backward_f32_scalar(x, d, &b, n)
                assertNear(a, b, rel: 2e-6, abs: 3e-7, "\(name) gelu backward n=\(n)")
                var ga = [Float](repeating: 1, count: n), gb = ga, ua = ga, ub = ga
                lk_swiglu_backward_f32(x, y, d, &ga, &ua, n); lk_swiglu_backward_f32_scalar(x, y, d, &gb, &ub, n)
                assertNear(ga, gb, rel: 2e-6, abs: 3e-7, "\(name) swiglu dgate n=\(n)")
                assertNear(ua, ub, rel: 1e-6, abs: 1e-7, "\(name) swiglu dup n=\(n)")
                lk_swiglu_backward_f32(x, y, d, nil, &ua, n)  // a missing gradient is skipped
                // Reductions (summation order differs).
                XCTAssertEqual(lk_max_f32(x, n), lk_max_f32_scalar(x, n), "\(name) max n=\(n)")
                XCTAssertEqual(lk_dot_f32(x, y, n), lk_dot_f32_scalar(x, y, n), accuracy: 1e-5 * Float(max(n, 1)), "\(name) dot n=\(n)")
                let m = lk_max_f32_scalar(x, n)
                let sa = lk_exp_shift_sum_f32(x, m, &a, n), sb = lk_exp_shift_sum_f32_scalar(x, m, &b, n)
                assertNear(a, b, rel: 1e-6, "\(name) exp n=\(n)")
                XCTAssertEqual(sa, sb, accuracy: 1e-5 * max(sb, 1), "\(name) exp sum n=\(n)")
            }
        }
    }

    func testScalarTwinsMatchDoublePrecisionFormulas() {
        let x = values(4099, seed: 1, scale: 8).map(Double.init), y = values(4099, seed: 2).map(Double.init)
        let fx = x.map(Float.init), fy = y.map(Float.init)
        let n = x.count
        func sig(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
        func gelu(_ v: Double) -> Double { 0.5 * v * (1 + Foundation.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) }
        var out = [Float](repeating: 0, count: n)
        lk_silu_f32_scalar(fx, &out, n)
        assertNear(out, x.map { Float($0 * sig($0)) }, rel: 1e-6, abs: 1e-7, "silu")
        lk_gelu_tanh_f32_scalar(fx, &out, n)
        assertNear(out, x.map { Float(gelu($0)) }, rel: 1e-6, abs: 2e-7, "gelu")
        lk_swiglu_f32_scalar(fx, fy, &out, n)
        assertNear(out, zip(x, y).map { Float($0 * sig($0) * $1) }, rel: 1e-6, abs: 1e-7, "swiglu")
        // Derivatives against central differences of the Double formulas.
        func numeric(_ f: (Double) -> Double, _ v: Double) -> Double { (f(v + 1e-6) - f(v - 1e-6)) / 2e-6 }
        out = [Float](repeating: 0, count: n)
        lk_silu_backward_f32_scalar(fx, [Float](repeating: 1, count: n), &out, n)
        assertNear(out, x.map { Float(numeric({ $0 * sig($0) }, $0)) }, rel: 1e-5, abs: 1e-6, "silu'")
        out = [Float](repeating: 0, count: n)
        lk_gelu_tanh_backward_f32_scalar(fx, [Float](repeating: 1, count: n), &out, n)
        assertNear(out, x.map { Float(numeric(gelu, $0)) }, rel: 1e-5, abs: 1e-6, "gelu'")
        var dg = [Float](repeating: 0, count: n), du = dg
        lk_swiglu_backward_f32_scalar(fx, fy, [Float](repeating: 1, count: n), &dg, &du, n)
        assertNear(dg, zip(x, y).map { Float(numeric({ $0 * sig($0) }, $0) * $1) }, rel: 1e-5, abs: 1e-6, "swiglu dgate")
        assertNear(du, x.map { Float($0 * sig($0)) }, rel: 1e-6, abs: 1e-7, "swiglu dup")
    }

    func testExpAccuracyAndLimits() {
        let xs = stride(from: Float(-87), through: 80, by: 0.0137).map { $0 }
        var out = [Float](repeating: 0, count: xs.count)
        forEachISA { level in
            _ = lk_exp_shift_sum_f32(xs, 0, &out, xs.count)
            for (x, e) in zip(xs, out) {
                let want = Foundation.exp(Double(x))
                XCTAssertLessThan(abs(Double(e) - want) / want, 3e-7, "\(String(cString: lk_isa_name(level))) exp(\(x))")
            }
        }
        var tail = [Float](repeating: 1, count: 3)
        _ = lk_exp_shift_sum_f32([-100, -200, 0], 0, &tail, 3)
        XCTAssertEqual(tail, [0, 0, 1])
        var probs = [Float](repeating: 0, count: 17)
        let logits = values(17, seed: 5, scale: 30)
        _ = lk_exp_shift_sum_f32(logits, lk_max_f32(logits, 17), &probs, 17)
        XCTAssertTrue(probs.allSatisfy { $0 > 0 && $0 <= 1 } && probs.contains(1), "shifted by the max: (0, 1]")
    }

    func testExtremesStayFinite() {
        let x: [Float] = [-100, 100, -1e30, 1e30, 0] + [Float](repeating: 100, count: 16)
        let n = x.count
        forEachISA { level in
            var out = [Float](repeating: .nan, count: n)
            lk_silu_f32(x, &out, n)
            XCTAssertLessThan(abs(out[0]), 1e-30, "silu(-100) ≈ 0 at \(level)")
            XCTAssertEqual(out[1], 100)
            XCTAssertTrue(out.allSatisfy(\.isFinite), "silu \(out)")
            lk_gelu_tanh_f32(x, &out, n)
            XCTAssertLessThan(abs(out[0]), 1e-30); XCTAssertEqual(out[1], 100)
            XCTAssertTrue(out.allSatisfy(\.isFinite), "gelu \(out)")
            var dx = [Float](repeating: 0, count: n)
            lk_silu_backward_f32(x, [Float](repeating: 1, count: n), &dx, n)
            XCTAssertTrue(dx.allSatisfy(\.isFinite), "silu' \(dx)")
        }
    }

    func testMaxConventions() {
        XCTAssertEqual(lk_max_f32([], 0), -.infinity)
        let withNaN: [Float] = [1, .nan, 3] + [Float](repeating: 2, count: 20)
        forEachISA { _ in XCTAssertEqual(lk_max_f32(withNaN, withNaN.count), 3, "NaN elements are skipped") }
    }

    /// Dropout masks: every ISA keeps and drops exactly the elements the scalar twin does, at
    /// any starting index (threads generate ranges of one mask), and the twin's mask is
    /// SplitMix64's stream from the seed compared as a 24-bit uniform with p.
    func testDropoutMatchesTwinAndSplitMixStream() {
        func splitMix(_ seed: UInt64, _ index: UInt64) -> UInt64 {
            var z = seed &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let p: Float = 0.3, scale = 1 / (1 - p), threshold = UInt32((Double(p) * 16_777_216).rounded(.up))
        let seed: UInt64 = 0xDEAD_BEEF_1234_5678
        let n = 4099, x = values(n, seed: 3), dy = values(n, seed: 4, scale: 1)
        var twin = [Float](repeating: .nan, count: n)
        lk_dropout_f32_scalar(seed, 0, x, &twin, n, threshold, scale)
        for i in 0..<n {
            let uniform = Float(splitMix(seed, UInt64(i)) >> 40) * (1.0 / 16_777_216.0)
            XCTAssertEqual(twin[i], uniform < p ? 0 : x[i] * scale, "element \(i)")
        }
        XCTAssertEqual(Double(twin.filter { $0 == 0 }.count) / Double(n), Double(p), accuracy: 0.03)
        forEachISA { level in
            for first in [0, 1, 17, 1000] {
                for count in [0, 1, 15, 16, 17, 33, 1000] where first + count <= n {
                    var out = [Float](repeating: .nan, count: count)
                    x.withUnsafeBufferPointer { xs in
                        out.withUnsafeMutableBufferPointer { lk_dropout_f32(seed, UInt64(first), xs.baseAddress! + first, $0.baseAddress, count, threshold, scale) }
                    }
                    XCTAssertEqual(out, Array(twin[first..<(first + count)]), "\(level) forward from \(first), \(count) elements")
                    var dx = [Float](repeating: 1, count: count), dxTwin = dx
                    dy.withUnsafeBufferPointer { d in
                        dx.withUnsafeMutableBufferPointer { lk_dropout_backward_f32(seed, UInt64(first), d.baseAddress! + first, $0.baseAddress, count, threshold, scale) }
                        dxTwin.withUnsafeMutableBufferPointer { lk_dropout_backward_f32_scalar(seed, UInt64(first), d.baseAddress! + first, $0.baseAddress, count, threshold, scale) }
                    }
                    XCTAssertEqual(dx, dxTwin, "\(level) backward from \(first)")
                    for i in 0..<count { XCTAssertEqual(dx[i], twin[first + i] == 0 ? 1 : 1 + dy[first + i] * scale) }
                }
            }
        }
    }

    /// NF4 decoding: every ISA equals the scalar twin for any start (odd, mid-block, mid-byte)
    /// and length, and the twin reads bitsandbytes' layout (even element in the high nibble,
    /// one scale per block of 64 counted from the first block the range touches).
    func testNF4DecodeMatchesTwinAndLayout() {
        let codebook = values(16, seed: 11, scale: 1)
        let total = 1000
        let packed = (0..<(total / 2)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ ($0 >> 3)) }
        let scales = values(total / 64 + 1, seed: 12, scale: 2)
        for (first, n) in [(0, 1000), (1, 998), (63, 130), (64, 64), (31, 1), (5, 0), (100, 33), (992, 8)] {
            let firstBlock = first / 64
            let localScales = Array(scales[firstBlock...])
            var twin = [Float](repeating: .nan, count: n)
            lk_decode_nf4_f32_scalar(packed, first, n, codebook, localScales, &twin)
            for i in 0..<n {
                let e = first + i, byte = packed[e / 2]
                let code = e % 2 == 0 ? Int(byte >> 4) : Int(byte & 15)
                XCTAssertEqual(twin[i], codebook[code] * scales[e / 64], "twin element \(e)")
            }
            forEachISA { level in
                var out = [Float](repeating: .nan, count: n)
                lk_decode_nf4_f32(packed, first, n, codebook, localScales, &out)
                XCTAssertEqual(out, twin, "\(level) from \(first), \(n) elements")
            }
        }
    }
}
