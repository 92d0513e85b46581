@testable import Training
import Datasets
import Formats
import TensorCore
import XCTest

/// The checkpoint as one value: written and read back whole, and every name, shape and count
/// checked when read (a checkpoint may come from a stranger).
final class CheckpointValueTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-ckpt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    static let a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    static let b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"

    static func sample() -> Checkpoint {
        var metrics = TrainingMetrics()
        metrics.steps = [1, 2]
        metrics.losses = [2.5, 2.25]
        metrics.learningRates = [0.5, 0.25]  // stored as Float32: exact
        metrics.tokensPerSecond = [100, 120]
        metrics.validationSteps = [2]
        metrics.validationLosses = [2.5]
        let state = TrainerState(step: 2, optimizerStep: 2, moments: [a: ([Float](repeating: 0.5, count: 8), [Float](repeating: 0.25, count: 8))],
                                 dataCursor: DataCursor(epoch: 1, index: 3), dropoutGenerators: ["model.layers.0.self_attn.q_proj": RandomGenerator(seed: 9)],
                                 bestValidationLoss: 2.5, evaluationsWithoutImprovement: 1)
        return Checkpoint(recipe: Recipe(), base: BaseIdentity(name: "tiny", path: "/m.gguf", sha256: "abc", license: "apache-2.0"),
                          adapter: [a: StoredTensor(shape: [2, 4], values: (0..<8).map(Float.init)),
                                    b: StoredTensor(shape: [3, 2], values: (0..<6).map { Float($0) / 2 })],
                          state: state, metrics: metrics)
    }

    func testWrittenCheckpointReadsBackEqual() throws {
        let path = directory + "/c.h5"
        try Self.sample().write(to: path)
        XCTAssertEqual(try Checkpoint(contentsOf: path), Self.sample())
    }

    /// Damaged or hostile archives: each is refused with a message naming the file and what is wrong.
    func testMalformedCheckpointsAreRefusedNamingTheProblem() throws {
        let good = Self.sample().archive
        var cases: [(String, HDF5Archive)] = []
        var noRecipe = good; noRecipe.strings["recipe"] = nil; cases.append(("no recipe", noRecipe))
        var badRecipe = good; badRecipe.strings["recipe"] = "lora:\n  rank: -3\n"; cases.append(("lora.rank", badRecipe))
        var badName = good; badName.floatArrays["adapter/model.layers.0.mlp.weight"] = .init(shape: [1, 1], values: [0]); cases.append(("not named as PEFT", badName))
        var badShape = good; badShape.floatArrays["adapter/" + Self.a] = .init(shape: [2, 5], values: [0, 1]); cases.append(("has shape [2, 5] for 2 values", badShape))
        var hugeShape = good; hugeShape.floatArrays["adapter/" + Self.a] = .init(shape: [1 << 40, 1], values: [0]); cases.append(("has shape", hugeShape))
        var nan = good; nan.floatArrays["adapter/" + Self.b] = .init(shape: [3, 2], values: [0, .nan, 0, 0, 0, 0]); cases.append(("NaN", nan))
        var rank = good; rank.floatArrays["adapter/" + Self.b] = .init(shape: [3, 3], values: [Float](repeating: 0, count: 9)); cases.append(("rank 2", rank))
        var lonely = good; lonely.floatArrays["adapter/" + Self.b] = nil; cases.append(("no matching lora_B", lonely))
        var moments = good; moments.floatArrays["optimizer/m/" + Self.a] = .init(shape: [3], values: [0, 0, 0]); cases.append(("moments", moments))
        var cursor = good; cursor.intArrays["state/data_cursor"] = [1]; cases.append(("data_cursor", cursor))
        var generator = good; generator.intArrays["state/dropout_rng/x"] = [1, 2]; cases.append(("generator state is 4", generator))
        var metrics = good; metrics.floatArrays["metrics/loss"] = .init(shape: [1], values: [1]); cases.append(("metrics arrays", metrics))
        // Read from the archive value: the HDF5 writer itself refuses some of these shapes.
        for (n, (words, archive)) in cases.enumerated() {
            let path = directory + "/bad-\(n).h5"
            XCTAssertThrowsError(try Checkpoint(archive: archive, path: path), words) { error in
                XCTAssertTrue("\(error)".contains(path), "\(error)")
                XCTAssertTrue("\(error)".contains(words), "case '\(words)': \(error)")
            }
        }
    }
}
