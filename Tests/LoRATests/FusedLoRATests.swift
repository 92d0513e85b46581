import LoRA
import Quantization
@testable import TensorCore
import TestSupport
import XCTest

/// A LoRA layer as one op (its one-member `linearGroup`) over both FrozenLinear bases: its backward
/// against finite differences, and its output and gradients against the composition of
/// generic ops it replaces, with and without dropout.
final class FusedLoRATests: XCTestCase {
    static let (i, o, r) = (13, 19, 3)  // odd sizes: no SIMD width or panel divides them

    /// Both frozen bases over the same weight W [O, I] and bias [O]: an NF4 weight decoded in
    /// panels of 5 rows (a tail of 4) and a dense one.
    static func bases() -> [(name: String, layer: any FrozenLinear)] {
        let w = Fixtures.tensor([o, i], seed: 1, requiresGrad: false), bias = Fixtures.tensor([o], seed: 2, requiresGrad: false)
        return [("nf4", QuantizedLinear(weight: NF4Matrix(quantizing: w), bias: bias, panelRows: 5)),
                ("dense", DenseLinear(weight: w, bias: bias))]
    }

    /// A with B non-zero (a fresh adapter's B = 0 would hide every A and x term of backward).
    static func adapter(over base: any FrozenLinear, dropout: Float) -> LoRALinear {
        LoRALinear(base: base, a: Fixtures.tensor([r, i], seed: 3), b: Fixtures.tensor([o, r], seed: 4),
                   scale: 1.5, dropout: dropout, rng: RandomGenerator(seed: 5))
    }

    /// The layer as it was built before fusion: base, dropout, two matmuls, scaled, add.
    static func unfused(_ layer: LoRALinear, _ x: Tensor, rng: inout RandomGenerator) -> Tensor {
        let dropped = layer.dropout > 0 ? x.dropout(probability: layer.dropout, rng: &rng) : x
        return layer.base.forward(x) + dropped.matmul(layer.a, transposeB: true).matmul(layer.b, transposeB: true).scaled(by: layer.scale)
    }

    func testFusedGradientsMatchFiniteDifferences() {
        for (name, base) in Self.bases() {
            for p: Float in [0, 0.3] {
                let layer = Self.adapter(over: base, dropout: p)
                let x = Fixtures.tensor([2, 5, Self.i], seed: 6)
                let y = layer.forward(x)
                XCTAssertEqual(y.node?.op, "linear_group", "\(name): the fused op was not taken")
                assertGradientsMatch([x, layer.a, layer.b], "\(name) base, dropout \(p)") { inputs in
                    layer.dropoutRNG = RandomGenerator(seed: 7)  // the same mask on every evaluation
                    return layer.forward(inputs[0])
                }
            }
        }
    }

    /// Output and every gradient equal the generic composition's to 1e-5 relative; the
    /// generator is left where `dropout` leaves it (same draws, same order), so checkpoint
    /// replays and resumed runs see the same masks. One row is generation's matvec path.
    func testFusedEqualsTheUnfusedComposition() {
        for (name, base) in Self.bases() {
            for p: Float in [0, 0.3] {
                for compute in ComputeDType.allCases where compute == .f32 || base is QuantizedLinear {
                    for shape in [[2, 5, Self.i], [1, Self.i]] {
                        let label = "\(name) base, dropout \(p), \(compute), x \(shape)"
                        let layer = Self.adapter(over: base, dropout: p)
                        let x = Fixtures.tensor(shape, seed: 8)
                        let projection = Fixtures.tensor(Array(shape.dropLast()) + [Self.o], seed: 9, requiresGrad: false)
                        var reference = layer.dropoutRNG
                        let (fused, want) = withComputeDType(compute) {
                            let y = layer.forward(x), yu = Self.unfused(layer, x, rng: &reference)
                            return ((y, (y * projection).sum().backward()), (yu, (yu * projection).sum().backward()))
                        }
                        XCTAssertEqual(fused.0.node?.op, "linear_group", label)
                        XCTAssertEqual(layer.dropoutRNG, reference, "\(label): the generator moved differently")
                        assertClose(fused.0, want.0.scalars, atol: 1e-6, rtol: 1e-5, "\(label): y")
                        for (which, t) in [("x", x), ("A", layer.a), ("B", layer.b)] {
                            guard let got = fused.1[t], let expected = want.1[t] else { return XCTFail("\(label): no gradient for \(which)") }
                            assertClose(got, expected.scalars, atol: 1e-6, rtol: 1e-5, "\(label): d\(which)")
                        }
                    }
                }
            }
        }
    }

    /// Gradients nobody asked for are not formed, and those asked for do not depend on which
    /// others were: a frozen input (data) or frozen factors give the same dA, dB or dx as
    /// the run where all three are wanted.
    func testOnlyRequestedGradientsAreFormed() {
        let (_, base) = Self.bases()[0]
        let layer = Self.adapter(over: base, dropout: 0.3)
        let x = Fixtures.tensor([4, Self.i], seed: 10)
        func run(_ layer: LoRALinear, _ input: Tensor) -> GradientStore {
            layer.dropoutRNG = RandomGenerator(seed: 11)
            return layer.forward(input).sum().backward()
        }
        let all = run(layer, x)

        let adapterOnly = run(layer, x.detached())
        XCTAssertEqual(Set(adapterOnly.tensors.map(ObjectIdentifier.init)), [ObjectIdentifier(layer.a), ObjectIdentifier(layer.b)])
        for (which, t) in [("A", layer.a), ("B", layer.b)] {
            XCTAssertEqual(adapterOnly[t]?.scalars, all[t]?.scalars, "d\(which) with frozen input")
        }

        let frozen = LoRALinear(base: base, a: layer.a.detached(), b: layer.b.detached(), scale: 1.5, dropout: 0.3, rng: RandomGenerator(seed: 5))
        let inputOnly = run(frozen, x)
        XCTAssertEqual(inputOnly.tensors.count, 1)
        XCTAssertEqual(inputOnly[x]?.scalars, all[x]?.scalars, "dx with frozen factors")
        XCTAssertFalse(noGrad { layer.forward(x) }.requiresGrad, "nothing is recorded without grad mode")
    }
}
