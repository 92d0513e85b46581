import Architectures
import Formats
import Foundation
import LoRA
import Quantization
import TensorCore
import XCTest

/// The batched step (one shared base product over all rows, each row's adapter added over its
/// own rows, attention per row against its own cache) against its naive twin: each sequence
/// alone through `nextTokenLogits` on a model carrying its adapter as `LoRALinear` layers.
/// Rows differ in adapter (two adapters and the base), in length, and in phase (one row
/// prefills a chunk while the others decode).
final class BatchedDecodingParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures").path

    /// Random A, B per targeted module (B nonzero, so the adapter changes the logits).
    static func adapterUpdates(_ model: DecoderModel, targets: [String], rank: Int, seed: UInt64) -> [String: LowRankUpdate] {
        var rng = RandomGenerator(seed: seed)
        var updates: [String: LowRankUpdate] = [:]
        for (name, layer) in model.namedLinears where targets.contains(where: { name.hasSuffix($0) }) {
            let a = Tensor(normal: [rank, layer.inputFeatures], std: 0.5 / Float(layer.inputFeatures).squareRoot(), rng: &rng)
            let b = Tensor(normal: [layer.outputFeatures, rank], std: 0.5 / Float(rank).squareRoot(), rng: &rng)
            updates[name] = LowRankUpdate(a: a, b: b, scale: 2, mask: nil)
        }
        return updates
    }

    /// `load()` again with `updates` wrapped in as evaluation-mode LoRA layers.
    static func adapted(_ load: () throws -> DecoderModel, _ updates: [String: LowRankUpdate]) throws -> DecoderModel {
        let model = try load()
        model.replaceLinears { name, layer in
            guard let u = updates[name] else { return layer }
            let lora = LoRALinear(base: layer, a: u.a, b: u.b, scale: u.scale, rng: RandomGenerator(seed: 0))
            lora.isTraining = false
            return lora
        }
        return model
    }

    /// Returns the largest |batched − sequential| logit over every step, relative to the largest |logit|.
    func compare(_ load: () throws -> DecoderModel, prompts: [[Int32]], decodeSteps: Int, lateChunk: [Int32],
                 file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let base = try load()
        let targetsA = ["self_attn.q_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.down_proj"]
        let targetsB = ["self_attn.k_proj", "self_attn.o_proj", "mlp.up_proj", "lm_head"]
        let first = AdapterWeights(updates: Self.adapterUpdates(base, targets: targetsA, rank: 4, seed: 1))
        let second = AdapterWeights(updates: Self.adapterUpdates(base, targets: targetsB, rank: 8, seed: 2))
        XCTAssertFalse(first.updates.isEmpty, file: file, line: line)
        XCTAssertFalse(second.updates.isEmpty, file: file, line: line)
        // Row r: adapter r % 3 (first, second, none); the naive twin runs each on its own adapted copy.
        let adapters: [AdapterWeights?] = prompts.indices.map { [first, second, nil][$0 % 3] }
        let twins = try [Self.adapted(load, first.updates), Self.adapted(load, second.updates), base]
        let capacity = (prompts.map(\.count).max() ?? 0) + decodeSteps + lateChunk.count + 2
        let batchedCaches = prompts.map { _ in base.makeCache(capacity: capacity) }
        let naiveCaches = prompts.map { _ in base.makeCache(capacity: capacity) }
        var worst: Float = 0, largest: Float = 0
        var adaptedRowsDiffering = 0

        func check(_ inputs: [[Int32]], rows: [Int], step: String) {
            let batched = base.batchedNextTokenLogits(rows.map { BatchRow(ids: inputs[$0], cache: batchedCaches[$0], adapter: adapters[$0]) })
            XCTAssertEqual(batched.count, rows.count, file: file, line: line)
            for (k, r) in rows.enumerated() {
                let naive = twins[r % 3].nextTokenLogits(ids: inputs[r], cache: naiveCaches[r])
                XCTAssertEqual(batched[k].count, naive.count, file: file, line: line)
                for (x, y) in zip(batched[k], naive) {
                    worst = max(worst, abs(x - y))
                    largest = max(largest, abs(y))
                }
                XCTAssertEqual(batchedCaches[r].length, naiveCaches[r].length, "\(step) row \(r)", file: file, line: line)
                if step == "prefill", r % 3 != 2 {  // an adapted row must not give the base's logits
                    let baseLogits = base.nextTokenLogits(ids: inputs[r], cache: base.makeCache(capacity: capacity))
                    if let d = zip(baseLogits, naive).map({ abs($0 - $1) }).max(), d > 1e-3 { adaptedRowsDiffering += 1 }
                }
            }
        }

        // Every prompt prefilled in one step, lengths differing.
        check(prompts, rows: Array(prompts.indices), step: "prefill")
        // Decoding: each row feeds a token of its own (a fixed schedule, so both sides see the same).
        for s in 0..<decodeSteps {
            let inputs = prompts.indices.map { [Int32((3 + 7 * $0 + 5 * s) % 60 + 1)] }
            check(inputs, rows: Array(prompts.indices), step: "decode \(s)")
        }
        // One row prefills a further chunk while the others decode one token.
        var mixed = prompts.indices.map { [Int32((11 + $0) % 60 + 1)] }
        mixed[1] = lateChunk
        check(mixed, rows: Array(prompts.indices), step: "chunk")
        // A subset of rows (a finished sequence left the batch).
        check(prompts.indices.map { [Int32(($0 + 2) % 60 + 1)] }, rows: [0, 2], step: "subset")
        XCTAssertEqual(adaptedRowsDiffering, prompts.indices.filter { $0 % 3 != 2 }.count, "the adapters must change the logits",
                       file: file, line: line)
        return worst / max(largest, 1e-6)
    }

    func testBatchedStepEqualsSequentialOnTinyGemma3WithSlidingWindows() throws {
        let folder = Self.fixtures + "/gemma3"
        let config = try DecoderModel(huggingFaceFolder: folder).config
        XCTAssertNotNil(config.window(ofLayer: 0), "the fixture's windowed layers are what this test is about")
        let prompts: [[Int32]] = [[5, 9, 13, 2, 7, 11], [3, 4], [8, 1, 6, 2, 9, 4, 7, 5, 3], [10, 12, 14]]
        let relative = try compare({ try DecoderModel(huggingFaceFolder: folder) }, prompts: prompts, decodeSteps: 5,
                                   lateChunk: [21, 22, 23, 24, 25])
        print("gemma3 fixture: batched vs sequential, worst |Δlogit| / max |logit| = \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-5)
    }

    func testBatchedStepEqualsSequentialOnSmolLM2() throws {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing at \(path): run scripts/setup.sh") }
        let prompts: [[Int32]] = [[1, 504, 3032, 314, 253, 3143], [1, 22, 33], [1, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10], [1, 42]]
        let relative = try compare({ try DecoderModel(ggufPath: path) }, prompts: prompts, decodeSteps: 3,
                                   lateChunk: [100, 200, 300, 400])
        print("SmolLM2: batched vs sequential, worst |Δlogit| / max |logit| = \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-5)
    }

    /// Qwen2.5-Coder Q4_K_M, whose Q5_0, Q4_K and Q6_K products round activations to 8 bits
    /// for decoded tokens, where a last-bit difference in x can round a code the other way and
    /// move logits by tenths. So a batched decode row must take decoding alone's products bit for
    /// bit (`tokenDotRows`): from caches filled alike, four sequences decode three steps, then
    /// three of them decode beside a fourth's prompt chunk, each within float order of decoding
    /// alone in its logits (the head's Q8_0 product is f32 in another order) — any code rounded
    /// differently on the way would show as ≈ 0.1. (A prompt prefilled in a batch is f32 in a
    /// batch-dependent order, and the tokens after it may part at near-ties: README, "Serve it".)
    func testBatchedDecodeRowsEqualDecodingAloneOnQwenCoderQ4KM() throws {
        let path = CacheLocation.qwenCoderModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("real test base missing at \(path): run scripts/setup.sh") }
        let model = try DecoderModel(ggufPath: path)
        let prompts: [[Int32]] = [[151644, 872, 198, 7985, 264], [151644, 9707], [151644, 872, 198, 3838, 1558, 16391, 11, 13, 25, 30], [151644, 42]]
        let batchedCaches = prompts.map { _ in model.makeCache(capacity: 24) }, naiveCaches = prompts.map { _ in model.makeCache(capacity: 24) }
        for (p, prompt) in prompts.enumerated() {
            XCTAssertEqual(model.nextTokenLogits(ids: prompt, cache: batchedCaches[p]), model.nextTokenLogits(ids: prompt, cache: naiveCaches[p]))
        }
        var worst: Float = 0, largest: Float = 0
        func check(_ inputs: [[Int32]], compared rows: [Int]) {
            let batched = model.batchedNextTokenLogits(inputs.indices.map { BatchRow(ids: inputs[$0], cache: batchedCaches[$0], adapter: nil) })
            for r in inputs.indices {
                let naive = model.nextTokenLogits(ids: inputs[r], cache: naiveCaches[r])
                guard rows.contains(r) else { continue }
                for (x, y) in zip(batched[r], naive) {
                    worst = max(worst, abs(x - y))
                    largest = max(largest, abs(y))
                }
            }
        }
        for s in 0..<3 { check(prompts.indices.map { [Int32(1000 + 37 * $0 + 11 * s)] }, compared: [0, 1, 2, 3]) }
        var mixed = prompts.indices.map { [Int32(2000 + $0)] }
        mixed[1] = [100, 200, 300, 400]  // f32 rows beside the token rows: its own cache parts from decoding alone's
        check(mixed, compared: [0, 2, 3])
        check([[3000], [3001], [3002], [3003]], compared: [0, 2, 3])
        print("Qwen2.5-Coder Q4_K_M: batched decode rows vs decoding alone, worst |Δlogit| = \(worst) of max |logit| \(largest)")
        XCTAssertLessThanOrEqual(worst / max(largest, 1e-6), 1e-5)
    }
}
