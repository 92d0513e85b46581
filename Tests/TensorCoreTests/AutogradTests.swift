import TensorCore
import TestSupport
import XCTest

/// Tape semantics: who gets gradients, accumulation, and scopes that record nothing.
final class AutogradTests: XCTestCase {
    func testFrozenInputsNeverGetAGradientBuffer() {
        let frozen = Fixtures.tensor([4, 3], seed: 1, requiresGrad: false)
        let trainable = Fixtures.tensor([3, 2], seed: 2)
        let grads = frozen.matmul(trainable).sum().backward()
        XCTAssertNil(grads[frozen])
        XCTAssertNotNil(grads[trainable])
        XCTAssertEqual(grads.tensors.count, 1, "only the trainable leaf keeps a gradient")
    }

    func testSubgraphWithoutTrainableInputsRecordsNothing() {
        let a = Fixtures.tensor([3, 3], seed: 3, requiresGrad: false)
        let b = a.matmul(a).silu().softmax()
        XCTAssertFalse(b.requiresGrad)
    }

    func testNoGradScopeRecordsNothing() {
        let w = Fixtures.tensor([3, 3], seed: 4)
        let inside = noGrad { w.matmul(w) }
        XCTAssertFalse(inside.requiresGrad)
        XCTAssertTrue(w.matmul(w).requiresGrad, "the scope ends with its closure")
    }

    func testGradientsAccumulateOverEveryUse() {
        // y = x·x + 3x → dy/dx = 2x + 3.
        let x = Tensor(shape: [3], scalars: [1, -2, 0.5], requiresGrad: true)
        let grads = (x * x + x.scaled(by: 3)).sum().backward()
        XCTAssertEqual(grads[x]?.scalars, [5, -1, 4])
    }

    func testDeepChainsDoNotOverflowTheStack() {
        let x = Tensor(shape: [1], scalars: [1], requiresGrad: true)
        var y = x
        for _ in 0..<20_000 { y = y.scaled(by: 1) }
        XCTAssertEqual(y.sum().backward()[x]?.scalars, [1])
    }

    func testNonScalarBackwardTakesASeed() {
        let x = Tensor(shape: [2], scalars: [1, 2], requiresGrad: true)
        let grads = x.scaled(by: 2).backward(seed: Tensor(shape: [2], scalars: [10, 100]))
        XCTAssertEqual(grads[x]?.scalars, [20, 200])
    }
}
