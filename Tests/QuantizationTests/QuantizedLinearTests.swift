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
}
