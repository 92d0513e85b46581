import Quantization
import TensorCore
import TestSupport
import XCTest

final class QuantizedLinearTests: XCTestCase {
    /// Panel-by-panel decoding gives the dense layer's result for any panel size, including
    /// panels that do not divide the row count.
    func testMatchesDenseLinearForEveryPanelSize() {
        let w = Fixtures.tensor([37, 13], seed: 1, requiresGrad: false), b = Fixtures.tensor([37], seed: 2, requiresGrad: false)
        let x = Fixtures.tensor([2, 5, 13], seed: 3, requiresGrad: false)
        let dense = DenseLinear(weight: w, bias: b).forward(x)
        for panel in [1, 5, 36, 37, 256] {
            let quantized = QuantizedLinear(weight: DenseMatrix(w), bias: b, panelRows: panel).forward(x)
            XCTAssertEqual(quantized.shape, [2, 5, 37])
            assertClose(quantized, dense.scalars, atol: 1e-5, "panel \(panel)")
        }
    }

    func testInputGradientMatchesFiniteDifferencesAndWeightGetsNone() {
        let w = Fixtures.tensor([23, 9], seed: 4, requiresGrad: false)
        let layer = QuantizedLinear(weight: DenseMatrix(w), panelRows: 7)
        assertGradientsMatch([Fixtures.tensor([3, 5, 9], seed: 5)]) { layer.forward($0[0]) }
        let x = Fixtures.tensor([4, 9], seed: 6)
        let grads = layer.forward(x).sum().backward()
        XCTAssertNotNil(grads[x])
        XCTAssertEqual(grads.tensors.count, 1, "the frozen weight has no gradient slot")
    }

    func testFrozenInputRecordsNothing() {
        let layer = QuantizedLinear(weight: DenseMatrix(Fixtures.tensor([4, 3], seed: 7, requiresGrad: false)))
        XCTAssertFalse(layer.forward(Fixtures.tensor([2, 3], seed: 8, requiresGrad: false)).requiresGrad)
    }

    /// The fused one-token product (what generation runs) against its naive twin, the decoded
    /// panel times x through BLAS, for every encoding Lorikeet writes.
    func testOneTokenMatvecMatchesThePanelProduct() {
        let w = Fixtures.tensor([301, 128], seed: 9, requiresGrad: false), b = Fixtures.tensor([301], seed: 10, requiresGrad: false)
        let x = Fixtures.tensor([1, 128], seed: 11, requiresGrad: false)
        for matrix in [DenseMatrix(w), NF4Matrix(quantizing: w), Q8_0Matrix(quantizing: w)] as [any QuantizedMatrix] {
            let decoded = TensorStorage(count: 301 * 128)
            matrix.decodeRows(0..<301, into: decoded.base)
            let twin = x.matmul(Tensor(shape: [301, 128], storage: decoded), transposeB: true) + b  // [1, 301]
            let fused = QuantizedLinear(weight: matrix, bias: b).forward(x)
            XCTAssertEqual(fused.shape, [1, 301])
            assertClose(fused, twin.scalars, atol: 1e-4, rtol: 1e-5, matrix.encodingName)
        }
    }

    /// With bf16 compute, forward and input gradient stay within the bf16 rounding bound of the
    /// f32 results: x and W each carry a relative rounding error of at most 2⁻⁹, so each product
    /// errs by at most (2·2⁻⁹ + 2⁻¹⁸)·|x·w| and a sum by 2⁻⁸·Σ|x·w| (f32 summation adds far less).
    /// Panels of 256 rows with a tail, and an NF4 weight as in training.
    func testBF16ComputeStaysWithinTheRoundingBoundOfF32() {
        let w = Fixtures.tensor([600, 96], seed: 12, requiresGrad: false)
        let layer = QuantizedLinear(weight: NF4Matrix(quantizing: w))
        let decoded = TensorStorage(count: 600 * 96)
        layer.weight.decodeRows(0..<600, into: decoded.base)
        let wd = Tensor(shape: [600, 96], storage: decoded)  // [O, I]
        let x = Fixtures.tensor([2, 37, 96], seed: 13), g = Fixtures.tensor([2, 37, 600], seed: 14, requiresGrad: false)
        func run(_ dtype: ComputeDType) -> (y: [Float], dx: [Float]) {
            withComputeDType(dtype) {
                let y = layer.forward(x)
                let grads = (y * g).sum().backward()
                return (y.scalars, grads[x]?.scalars ?? [])
            }
        }
        let (f, b) = (run(.f32), run(.bf16))
        let (ax, ag) = (Tensor(shape: [74, 96], scalars: x.scalars.map(abs)), Tensor(shape: [74, 600], scalars: g.scalars.map(abs)))
        let aw = Tensor(shape: [600, 96], scalars: wd.scalars.map(abs))
        let yBound = noGrad { ax.matmul(aw, transposeB: true) }.scalars  // Σ|x·w| per output, [74, 600]
        let dxBound = noGrad { ag.matmul(aw) }.scalars                     // Σ|g·w| per input, [74, 96]
        for (name, got, want, bound) in [("y", b.y, f.y, yBound), ("dx", b.dx, f.dx, dxBound)] {
            XCTAssertEqual(got.count, want.count, name)
            var differs = false
            for i in want.indices {
                differs = differs || got[i] != want[i]
                guard abs(got[i] - want[i]) <= 0x1p-8 * bound[i] + 1e-6 else {
                    return XCTFail("\(name)[\(i)]: bf16 \(got[i]), f32 \(want[i]), bound \(0x1p-8 * bound[i])")
                }
            }
            XCTAssertTrue(differs, "\(name): bf16 compute gave the f32 result exactly: was it used?")
        }
    }
}
