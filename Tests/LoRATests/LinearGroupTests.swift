import LoRA
import Quantization
@testable import TensorCore
import TestSupport
import XCTest

/// Projections of one input as one `linearGroup` op (q, k, v; gate, up): against the same
/// layers built from generic ops, finite differences, each layer run alone, and with the
/// decoded weights kept from a checkpoint's recomputation for its backward.
final class LinearGroupTests: XCTestCase {
    static let i = 13  // odd: no SIMD width or panel divides it

    /// Three adapted NF4 projections of different widths and ranks (panels of 5 rows, so
    /// every member has a tail panel) and one unadapted, biased projection.
    static func layers(dropout: Float) -> [any LinearLayer] {
        var layers: [any LinearLayer] = []
        for (k, (o, r)) in [(19, 3), (7, 2), (7, 3)].enumerated() {
            let base = QuantizedLinear(weight: NF4Matrix(quantizing: Fixtures.tensor([o, i], seed: UInt64(10 + k), requiresGrad: false)), panelRows: 5)
            layers.append(LoRALinear(base: base, a: Fixtures.tensor([r, i], seed: UInt64(20 + k)), b: Fixtures.tensor([o, r], seed: UInt64(30 + k)),
                                     scale: 1.5 + Float(k), dropout: dropout, rng: RandomGenerator(seed: UInt64(40 + k))))
        }
        layers.append(QuantizedLinear(weight: NF4Matrix(quantizing: Fixtures.tensor([11, i], seed: 14, requiresGrad: false)),
                                      bias: Fixtures.tensor([11], seed: 15, requiresGrad: false), panelRows: 5))
        return layers
    }

    static func adapters(_ layers: [any LinearLayer]) -> [LoRALinear] { layers.compactMap { $0 as? LoRALinear } }

    /// Member k through generic ops only: x·Wᵀ (+ bias) with W decoded, plus the adapter's
    /// update with its mask drawn by `dropout` from a copy of the layer's generator.
    static func composed(_ layer: any LinearLayer, _ x: Tensor) -> Tensor {
        let adapter = layer as? LoRALinear
        guard let base = (adapter?.base ?? layer) as? QuantizedLinear else { preconditionFailure("not a layer of layers(dropout:)") }
        var y = x.matmul(base.weight.decoded(), transposeB: true)
        if let bias = base.bias { y = y + bias }
        guard let adapter else { return y }
        var rng = adapter.dropoutRNG
        let dropped = adapter.dropout > 0 ? x.dropout(probability: adapter.dropout, rng: &rng) : x
        return y + dropped.matmul(adapter.a, transposeB: true).matmul(adapter.b, transposeB: true).scaled(by: adapter.scale)
    }

    /// Outputs and every gradient of the grouped op equal the generic ops' (f32) to 1e-5, with
    /// and without dropout (dropout puts each adapter on its own input; none stacks the A's),
    /// and each generator moves by one draw as the layer alone moves it.
    func testGroupEqualsGenericOps() {
        for p: Float in [0, 0.3] {
            for shape in [[2, 5, Self.i], [1, Self.i]] {
                let label = "dropout \(p), x \(shape)"
                let layers = Self.layers(dropout: p)
                let x = Fixtures.tensor(shape, seed: 1)
                let want = layers.map { Self.composed($0, x) }
                let before = Self.adapters(layers).map(\.dropoutRNG)
                let got = Tensor.project(x, through: layers)
                for (adapter, var generator) in zip(Self.adapters(layers), before) {
                    if p > 0 { _ = generator.next() }  // one seed per forward, as `dropout` draws
                    XCTAssertEqual(adapter.dropoutRNG, generator, "\(label): a generator moved differently")
                }
                XCTAssertEqual(got[0].node?.op, "slice", label)
                XCTAssertEqual(got[0].node?.inputs.first?.node?.op, "linear_group", "\(label): the group op was not taken")
                var wantGradients: [GradientStore] = [], gotGradients: [GradientStore] = []
                for (k, (g, w)) in zip(got, want).enumerated() {
                    assertClose(g, w.scalars, atol: 1e-6, rtol: 1e-5, "\(label): member \(k)")
                    let projection = Fixtures.tensor(g.shape, seed: UInt64(50 + k), requiresGrad: false)
                    wantGradients.append((w * projection).sum().backward())
                    gotGradients.append((g * projection).sum().backward())
                }
                // Each member's gradients separately (the backward of one slice reaches every
                // member's A and B, but only its own carry a non-zero part).
                for (k, (g, w)) in zip(gotGradients, wantGradients).enumerated() {
                    for (which, t) in [("x", x)] + Self.adapters(layers).flatMap({ [("A", $0.a), ("B", $0.b)] }) {
                        guard let expected = w[t] else { continue }
                        guard let actual = g[t] else { return XCTFail("\(label): member \(k) has no gradient for \(which)") }
                        assertClose(actual, expected.scalars, atol: 1e-6, rtol: 1e-5, "\(label): member \(k) d\(which)")
                    }
                }
            }
        }
    }

    /// The group's backward against finite differences for x and every A and B.
    func testGroupGradientsMatchFiniteDifferences() {
        for p: Float in [0, 0.3] {
            let layers = Self.layers(dropout: p)
            let adapters = Self.adapters(layers)
            let x = Fixtures.tensor([2, 3, Self.i], seed: 2)
            assertGradientsMatch([x] + adapters.flatMap { [$0.a, $0.b] }, "dropout \(p)") { inputs in
                for (k, adapter) in adapters.enumerated() { adapter.dropoutRNG = RandomGenerator(seed: UInt64(60 + k)) }
                return Tensor.concat(Tensor.project(inputs[0], through: layers), axis: -1)
            }
        }
    }

    /// The group equals its members run one by one (each its own one-member op), in f32 and
    /// bf16, and draws the same masks from the same generators.
    func testGroupEqualsMembersAlone() {
        for p: Float in [0, 0.3] {
            for compute in ComputeDType.allCases {
                let label = "dropout \(p), \(compute)"
                let (grouped, alone) = (Self.layers(dropout: p), Self.layers(dropout: p))
                let x = Fixtures.tensor([3, 4, Self.i], seed: 3)
                let (g, a) = withComputeDType(compute) {
                    (Tensor.concat(Tensor.project(x, through: grouped), axis: -1), Tensor.concat(alone.map { $0.forward(x) }, axis: -1))
                }
                assertClose(g, a.scalars, atol: 1e-6, rtol: 1e-5, "\(label): y")
                for (ga, aa) in zip(Self.adapters(grouped), Self.adapters(alone)) {
                    XCTAssertEqual(ga.dropoutRNG, aa.dropoutRNG, "\(label): a generator moved differently")
                }
                let projection = Fixtures.tensor(g.shape, seed: 4, requiresGrad: false)
                let (sg, sa) = withComputeDType(compute) { ((g * projection).sum().backward(), (a * projection).sum().backward()) }
                guard let dxg = sg[x], let dxa = sa[x] else { return XCTFail("\(label): no dx") }
                assertClose(dxg, dxa.scalars, atol: 1e-6, rtol: 1e-5, "\(label): dx")
                for (k, (ga, aa)) in zip(Self.adapters(grouped), Self.adapters(alone)).enumerated() {
                    for (which, tg, ta) in [("A", ga.a, aa.a), ("B", ga.b, aa.b)] {
                        guard let got = sg[tg], let want = sa[ta] else { return XCTFail("\(label): member \(k) no d\(which)") }
                        assertClose(got, want.scalars, atol: 1e-6, rtol: 1e-5, "\(label): member \(k) d\(which)")
                    }
                }
            }
        }
    }

    /// Recomputed for backward (`backwardFollows`), the group decodes its members' weights
    /// once and keeps them: the same output and gradients as panel by panel, in both dtypes;
    /// without the flag, or without an input gradient to form, nothing is kept.
    func testWeightsKeptForTheBackwardThatFollows() {
        let layers = Self.layers(dropout: 0)
        let bases = layers.map { ($0 as? LoRALinear)?.base ?? $0 } .compactMap { $0 as? any FrozenLinear }
        XCTAssertNotNil(FrozenGroupProducts(bases: bases, keepDecoded: true).decoded)
        XCTAssertNil(FrozenGroupProducts(bases: bases, keepDecoded: false).decoded)
        XCTAssertNil(FrozenGroupProducts(bases: [DenseLinear(weight: Fixtures.tensor([3, Self.i], seed: 5, requiresGrad: false))],
                                         keepDecoded: true).decoded, "a stored f32 weight is read in place, never copied")
        for compute in ComputeDType.allCases {
            let x = Fixtures.tensor([2, 4, Self.i], seed: 6)
            func run(_ follows: Bool) -> (Tensor, GradientStore) {
                GradMode.$backwardFollows.withValue(follows) {
                    withComputeDType(compute) {
                        let y = Tensor.concat(Tensor.project(x, through: layers), axis: -1)
                        return (y, (y * Fixtures.tensor(y.shape, seed: 7, requiresGrad: false)).sum().backward())
                    }
                }
            }
            let (panels, kept) = (run(false), run(true))
            assertClose(kept.0, panels.0.scalars, atol: 1e-6, rtol: 1e-5, "\(compute): y")
            for (which, t) in [("x", x)] + Self.adapters(layers).flatMap({ [("A", $0.a), ("B", $0.b)] }) {
                guard let got = kept.1[t], let want = panels.1[t] else { return XCTFail("\(compute): no d\(which)") }
                assertClose(got, want.scalars, atol: 1e-5, rtol: 1e-5, "\(compute): d\(which)")
            }
        }
    }

    /// Through a checkpointed block (where `backwardFollows` is set), gradients equal the
    /// block run without checkpointing.
    func testCheckpointedGroupEqualsPlainRun() {
        let layers = Self.layers(dropout: 0.3)
        let adapters = Self.adapters(layers)
        let x = Fixtures.tensor([2, 4, Self.i], seed: 8)
        func block(_ input: Tensor) -> Tensor { Tensor.concat(Tensor.project(input.tanh(), through: layers), axis: -1).sum() }
        func run(checkpointed: Bool) -> GradientStore {
            for (k, adapter) in adapters.enumerated() { adapter.dropoutRNG = RandomGenerator(seed: UInt64(70 + k)) }
            guard checkpointed else { return block(x).backward() }
            let states = adapters.map(\.dropoutRNG)
            return Tensor.checkpointed(x, parameters: adapters.flatMap(\.trainableParameters),
                                       rewind: { for (a, s) in zip(adapters, states) { a.dropoutRNG = s } }, block).backward()
        }
        let (plain, checkpointed) = (run(checkpointed: false), run(checkpointed: true))
        for (which, t) in [("x", x)] + adapters.flatMap({ [("A", $0.a), ("B", $0.b)] }) {
            guard let got = checkpointed[t], let want = plain[t] else { return XCTFail("no d\(which)") }
            assertClose(got, want.scalars, atol: 1e-5, rtol: 1e-5, "d\(which)")
        }
    }

    /// Frozen adapters or data get no gradient, and those asked for equal the full run's.
    func testOnlyRequestedGradientsAreFormed() {
        for p: Float in [0, 0.3] {
            let layers = Self.layers(dropout: p)
            let adapters = Self.adapters(layers)
            let x = Fixtures.tensor([5, Self.i], seed: 9)
            func run(_ layers: [any LinearLayer], _ input: Tensor) -> GradientStore {
                for (k, adapter) in Self.adapters(layers).enumerated() { adapter.dropoutRNG = RandomGenerator(seed: UInt64(80 + k)) }
                return Tensor.concat(Tensor.project(input, through: layers), axis: -1).sum().backward()
            }
            let all = run(layers, x)
            let adapterOnly = run(layers, x.detached())
            XCTAssertNil(adapterOnly[x], "dropout \(p): dx for data")
            for (k, adapter) in adapters.enumerated() {
                XCTAssertEqual(adapterOnly[adapter.a]?.scalars, all[adapter.a]?.scalars, "dropout \(p): dA\(k) with frozen input")
                XCTAssertEqual(adapterOnly[adapter.b]?.scalars, all[adapter.b]?.scalars, "dropout \(p): dB\(k) with frozen input")
            }
            // Member 1's factors frozen: the others' gradients and dx unchanged, none for it.
            var mixed = layers
            let frozen = adapters[1]
            mixed[1] = LoRALinear(base: frozen.base, a: frozen.a.detached(), b: frozen.b.detached(), scale: frozen.scale,
                                  dropout: p, rng: RandomGenerator(seed: 0))
            let partial = run(mixed, x)
            XCTAssertEqual(partial.tensors.count, 1 + 2 * 2, "dropout \(p): x and two adapters' A and B")
            assertClose(partial[x] ?? Tensor(zeros: [1]), all[x]?.scalars ?? [], atol: 1e-6, rtol: 1e-6, "dropout \(p): dx")
            for k in [0, 2] {
                XCTAssertEqual(partial[adapters[k].a]?.scalars, all[adapters[k].a]?.scalars, "dropout \(p): dA\(k)")
            }
        }
    }
}
