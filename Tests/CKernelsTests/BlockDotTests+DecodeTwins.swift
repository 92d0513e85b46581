import CKernels
import XCTest

extension BlockDotTests {
    /// The panel decoders compiled for AVX-512 and AVX2 write the same bits as the plain
    /// compilation (their twin) on random blocks, at odd block counts and from unaligned
    /// addresses (the panels of a row start anywhere in a mapped file).
    func testDecodersAtEveryISALevelEqualTheirTwinsBitForBit() {
        defer { _ = lk_isa_set_limit(LK_ISA_AVX512) }
        let decoders: [(name: String, elements: Int, bytes: Int, scales: [Int], decode: Decode, twin: Decode)] = [
            ("q8_0", 32, 34, [0], lk_dequant_q8_0, lk_dequant_q8_0_scalar),
            ("q4_0", 32, 18, [0], lk_dequant_q4_0, lk_dequant_q4_0_scalar),
            ("q4_1", 32, 20, [0, 2], lk_dequant_q4_1, lk_dequant_q4_1_scalar),
            ("q5_0", 32, 22, [0], lk_dequant_q5_0, lk_dequant_q5_0_scalar),
            ("q5_1", 32, 24, [0, 2], lk_dequant_q5_1, lk_dequant_q5_1_scalar),
            ("q4_k", 256, 144, [0, 2], lk_dequant_q4_k, lk_dequant_q4_k_scalar),
            ("q5_k", 256, 176, [0, 2], lk_dequant_q5_k, lk_dequant_q5_k_scalar),
            ("q6_k", 256, 210, [208], lk_dequant_q6_k, lk_dequant_q6_k_scalar),
        ]
        var compared = 0
        for d in decoders {
            for (count, seed) in [(1, 1), (3, 2), (17, 3), (40, 4)] as [(Int, UInt64)] {
                let raw = [UInt8(0)] + blocks(blockBytes: d.bytes, scaleOffsets: d.scales, count: count, seed: seed)
                var twin = [Float](repeating: .nan, count: count * d.elements)
                raw.withUnsafeBytes { d.twin($0.baseAddress! + 1, count, &twin) }
                XCTAssertTrue(twin.contains { $0 != 0 && $0.isFinite }, "\(d.name): the blocks must decode to something")
                for level in [LK_ISA_SCALAR, LK_ISA_AVX2, LK_ISA_AVX512] {
                    _ = lk_isa_set_limit(level)
                    var out = [Float](repeating: -1, count: count * d.elements)
                    raw.withUnsafeBytes { d.decode($0.baseAddress! + 1, count, &out) }
                    let same = zip(out, twin).allSatisfy { $0.bitPattern == $1.bitPattern }
                    XCTAssertTrue(same, "\(d.name) × \(count) at ISA level \(level.rawValue) differs from its twin")
                    compared += 1
                }
            }
        }
        XCTAssertEqual(compared, 8 * 4 * 3)
    }
}
