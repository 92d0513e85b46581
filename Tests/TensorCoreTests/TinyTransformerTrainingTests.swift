import Foundation
import TensorCore
import TestSupport
import XCTest

/// End to end: the engine's ops and gradients are right enough to learn a task from scratch.
final class TinyTransformerTrainingTests: XCTestCase {
    /// Copy task: rows are [x₁ … x₈, x₁ … x₈] with random xᵢ; loss only on the second half.
    /// Every token is uniformly random, so without attending 8 positions back no model can beat
    /// ln V = 2.77 nats; the trained model must get far below it.
    func makeBatch(_ rng: inout RandomGenerator, batch: Int, half: Int, vocab: Int) -> (IntTensor, IntTensor) {
        var ids: [Int32] = [], targets: [Int32] = []
        for _ in 0..<batch {
            let first = (0..<half).map { _ in Int32(rng.next() % UInt64(vocab)) }
            let row = first + first
            ids += row
            // Target at t is the token at t+1; only predictions of second-half tokens count.
            for t in 0..<(2 * half) { targets.append(t >= half - 1 && t < 2 * half - 1 ? row[t + 1] : -100) }
        }
        return (IntTensor(shape: [batch, 2 * half], scalars: ids), IntTensor(shape: [batch, 2 * half], scalars: targets))
    }

    func testTinyTransformerLearnsToCopy() {
        let model = TinyTransformer(seed: 1)
        var adam = TestAdam(lr: 1e-2)
        var rng = RandomGenerator(seed: 2)
        let (batch, half, vocab) = (16, 8, model.config.vocab)
        let positions = IntTensor.positions(batch: batch, length: 2 * half)
        let chance = Float(Foundation.log(Double(vocab)))

        let (evalIds, evalTargets) = makeBatch(&rng, batch: 64, half: half, vocab: vocab)
        let evalPositions = IntTensor.positions(batch: 64, length: 2 * half)
        let before = noGrad { model.loss(ids: evalIds, targets: evalTargets, positions: evalPositions).item }
        XCTAssertGreaterThan(before, chance - 0.5, "an untrained model is near chance")

        for _ in 0..<300 {
            let (ids, targets) = makeBatch(&rng, batch: batch, half: half, vocab: vocab)
            let grads = model.loss(ids: ids, targets: targets, positions: positions).backward()
            adam.update(model.parameters, grads)
        }
        let after = noGrad { model.loss(ids: evalIds, targets: evalTargets, positions: evalPositions).item }
        XCTAssertLessThan(after, 0.25 * chance, "held-out copy loss \(after) (before \(before), chance \(chance))")
    }
}
