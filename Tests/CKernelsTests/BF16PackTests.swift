import CKernels
import XCTest

/// The bf16 GEMM's packing, dispatched under every instruction set this CPU has (AVX-512F packs
/// with SIMD), against its scalar twins word for word: odd and even K, row counts off the tile,
/// panels packed in two calls, strides wider than K, and values where rounding has edges.
final class BF16PackTests: XCTestCase {
    /// A [M, K], B [N, K] (trans_b, packed like A with NR-row panels), B [K, N].
    enum Form: String, CaseIterable { case a, bNK, bKN }

    /// Words past the packed size, checked untouched.
    static let guardWords = 64
    static let sentinel: UInt32 = 0xDEAD_BEEF

    func panels(_ form: Form, _ rows: Int) -> Int {
        let r = Int(form == .a ? LK_BF16_MR : LK_BF16_NR)
        return (rows + r - 1) / r
    }

    /// Packs `rows` (M or N) of `x` (row stride ld) with the twin, or the dispatcher in two calls
    /// (upper panels first, as threads might); nil after an XCTFail when the guard was written.
    func pack(_ form: Form, twin: Bool, rows: Int, k: Int, _ x: [Float], ld: Int) -> [UInt32]? {
        let words = form == .a ? lk_gemm_bf16_packed_a_words(rows, k) : lk_gemm_bf16_packed_b_words(rows, k)
        var out = [UInt32](repeating: Self.sentinel, count: words + Self.guardWords)
        let np = panels(form, rows)
        for (lo, hi) in twin ? [(0, np)] : [(np / 2, np), (0, np / 2)] {
            switch (form, twin) {
            case (.a, true): lk_gemm_bf16_pack_a_scalar(rows, k, x, ld, lo, hi, &out)
            case (.a, false): lk_gemm_bf16_pack_a(rows, k, x, ld, lo, hi, &out)
            case (_, true): lk_gemm_bf16_pack_b_scalar(form == .bNK ? 1 : 0, rows, k, x, ld, lo, hi, &out)
            case (_, false): lk_gemm_bf16_pack_b(form == .bNK ? 1 : 0, rows, k, x, ld, lo, hi, &out)
            }
        }
        if out[words...].contains(where: { $0 != Self.sentinel }) {
            XCTFail("\(form) \(twin ? "twin" : "dispatched") wrote past \(words) words")
            return nil
        }
        return Array(out[..<words])
    }

    /// Shape of the source: rows × K for A and B [N, K], K × rows for B [K, N].
    func sourceShape(_ form: Form, rows: Int, k: Int) -> (count: Int, width: Int) {
        form == .bKN ? (k, rows) : (rows, k)
    }

    /// Every ISA level against the twin on `x`; the first differing word is reported.
    func assertMatchesTwin(_ form: Form, rows: Int, k: Int, _ x: [Float], ld: Int, _ what: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        guard let want = pack(form, twin: true, rows: rows, k: k, x, ld: ld) else { return }
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
            _ = lk_isa_set_limit(level)
            guard let got = pack(form, twin: false, rows: rows, k: k, x, ld: ld) else { return }
            if let i = got.indices.first(where: { got[$0] != want[$0] }) {
                return XCTFail(String(format: "%@ %@ %@ rows=%d k=%d ld=%d: word %d is %08x, twin %08x", form.rawValue,
                                      String(cString: lk_isa_name(level)), what, rows, k, ld, i, got[i], want[i]),
                               file: file, line: line)
            }
        }
    }

    /// Seeded values, with every stride's padding set to 1 (a read past K or N would show up
    /// as a nonzero half where the layout has zeros).
    func source(_ form: Form, rows: Int, k: Int, ld: Int, seed: UInt64) -> [Float] {
        let (count, width) = sourceShape(form, rows: rows, k: k)
        var x = seededValues(count * ld, seed: seed, scale: 3)
        for r in 0..<count { for c in width..<ld { x[r * ld + c] = 1 } }
        return x
    }

    func testPackingMatchesScalarTwinOnOddShapes() {
        let ks = [1, 2, 3, 15, 16, 17, 18, 31, 33, 385]
        let rowsFor: [Form: [Int]] = [.a: [1, 7, 8, 9, 17, 24, 33], .bNK: [1, 47, 48, 49, 97, 100], .bKN: [1, 15, 17, 47, 48, 49, 100]]
        for form in Form.allCases {
            for rows in rowsFor[form]! {
                for k in ks {
                    let width = sourceShape(form, rows: rows, k: k).width
                    for ld in [width, width + 3] {
                        let x = source(form, rows: rows, k: k, ld: ld, seed: UInt64(rows * 1000 + k))
                        assertMatchesTwin(form, rows: rows, k: k, x, ld: ld, "seeded")
                    }
                }
            }
        }
    }

    /// f32 bit patterns whose bf16 rounding has an edge: NaNs (quiet, signalling, payloads that
    /// would round into inf or carry into the sign), ±inf, the largest floats (round to inf),
    /// subnormals (kept, not flushed), ties either way, zeros of both signs.
    static let specials: [UInt32] = [
        0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FBF_FFFF, 0x7FFF_FFFF, 0xFFFF_FFFF,
        0x7F80_0000, 0xFF80_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F7F_8000, 0x7F7E_8000,
        0x0000_0001, 0x0000_8000, 0x0001_8000, 0x007F_FFFF, 0x8000_8001, 0x807F_8000, 0x0080_0000,
        0x3F80_8000, 0x3F81_8000, 0x3F80_8001, 0xBF80_7FFF, 0x0000_0000, 0x8000_0000, 0x3F80_0000,
    ]

    func testPackingMatchesScalarTwinOnSpecialValues() {
        let k = 37
        for form in Form.allCases {
            for rows in [9, 49] {
                let (count, width) = sourceShape(form, rows: rows, k: k)
                let ld = width + 2
                // The list's length (27) is prime to every stride, so each value lands in even
                // and odd K, in whole pairs and the odd tail, in every lane.
                let x = (0..<count * ld).map { Float(bitPattern: Self.specials[$0 % Self.specials.count]) }
                assertMatchesTwin(form, rows: rows, k: k, x, ld: ld, "special values")
            }
        }
    }

    /// Known words, so that the twin itself is pinned: a subnormal is rounded, not flushed
    /// (`vcvtne2ps2bf16` would give 0), a NaN whose payload would round to inf stays NaN, and the
    /// largest float rounds to inf. One row, K = 3: the odd tail's high half is 0.
    func testPackedWordsOfEdgeValues() {
        let x: [Float] = [0x007F_FFFF, 0x7F80_0001, 0x7F7F_FFFF].map { Float(bitPattern: $0) }
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] where level.rawValue <= lk_isa_detected().rawValue {
            _ = lk_isa_set_limit(level)
            let name = String(cString: lk_isa_name(level))
            guard let a = pack(.a, twin: false, rows: 1, k: 3, x, ld: 3) else { return }
            XCTAssertEqual(a[0], 0x7FC0_0080, name)
            XCTAssertEqual(a[Int(LK_BF16_MR)], 0x0000_7F80, name)
            XCTAssertEqual(a.enumerated().filter { $0.offset % Int(LK_BF16_MR) != 0 }.map(\.element).max(), 0, "\(name): padding rows")
        }
    }
}
