@testable import Architectures
import Formats
import Foundation
import Quantization
import TensorCore
import XCTest

/// The token products of a real Q4_K_M file (Qwen2.5-Coder-0.5B: Q5_0, Q4_K, Q6_K and Q8_0
/// projections): `tokenDotRows` gives each vector `matvec`'s bits where the weight rounds
/// activations to 8 bits, on whole matrices and runs of rows, directly and through the
/// rotary row-order view, so a batched decode row multiplies exactly as decoding alone does.
final class TokenProductTests: XCTestCase {
    func testTokenProductsEqualMatvecBitForBit() throws {
        let path = CacheLocation.qwenCoderModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("real test base missing at \(path): run scripts/setup.sh") }
        let file = try GGUFFile(path: path)
        let source = GGUFWeightSource(file: file, config: try ModelConfig(gguf: file))
        var seen: Set<String> = []
        for layer in 0..<3 {
            for module in ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] {
                let stored = try source.matrix(WeightNames.layer(layer, module + ".weight"))
                seen.insert(stored.encodingName)
                XCTAssertEqual(stored.roundsActivations, ["q5_0", "q4_k", "q6_k"].contains(stored.encodingName), stored.encodingName)
                guard stored.roundsActivations else { continue }
                let heads = module == "self_attn.q_proj" ? 14 : 2
                for m in [stored, RotaryRowOrder(stored, heads: heads) as any QuantizedMatrix] {
                    let tag = "layer \(layer) \(module) (\(m.encodingName), \(type(of: m)))"
                    for (vectors, range) in [(1, 0..<m.rows), (5, 0..<m.rows), (16, 64..<min(m.rows, 320))] {
                        let ldx = m.columns + 3, ldy = range.count + 2
                        var rng = RandomGenerator(seed: UInt64(vectors * 31 + layer))
                        let x = Tensor(normal: [vectors * ldx], std: 1, rng: &rng)
                        let y = TensorStorage(count: vectors * ldy)
                        y.base.update(repeating: .nan, count: vectors * ldy)
                        m.tokenDotRows(range, with: x.storage.base, vectors: vectors, stride: ldx, into: y.base, stride: ldy)
                        let one = TensorStorage(count: m.rows)
                        for v in 0..<vectors {
                            m.matvec(x.storage.base + v * ldx, into: one.base)
                            let got = (0..<range.count).map { y.base[v * ldy + $0].bitPattern }
                            XCTAssertEqual(got, range.map { one.base[$0].bitPattern }, "\(tag), \(vectors) vectors, rows \(range), vector \(v)")
                            XCTAssertTrue(y.base[v * ldy + range.count].isNaN, "\(tag): wrote past vector \(v)'s rows")
                        }
                    }
                }
            }
        }
        XCTAssertTrue(seen.isSuperset(of: ["q5_0", "q6_k", "q8_0"]), "\(seen)")
    }
}
