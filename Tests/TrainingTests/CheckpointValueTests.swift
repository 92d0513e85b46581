@testable import Training
import Datasets
import Formats
import LoRA
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

    /// The defaults with the sample adapter's rank.
    static var recipe: Recipe {
        var recipe = Recipe()
        recipe.lora.rank = 2
        return recipe
    }

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
        return Checkpoint(recipe: recipe, base: BaseIdentity(name: "tiny", path: "/m.gguf", sha256: "abc", license: "apache-2.0"),
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
        var rank = good; rank.floatArrays["adapter/" + Self.b] = .init(shape: [3, 3], values: [Float](repeating: 0, count: 9)); cases.append(("has 3 columns", rank))
        var lonely = good; lonely.floatArrays["adapter/" + Self.b] = nil; cases.append(("no matching lora_B", lonely))
        var moments = good; moments.floatArrays["optimizer/m/" + Self.a] = .init(shape: [3], values: [0, 0, 0]); cases.append(("moments", moments))
        var cursor = good; cursor.intArrays["state/data_cursor"] = [1]; cases.append(("data_cursor", cursor))
        var generator = good; generator.intArrays["state/dropout_rng/x"] = [1, 2]; cases.append(("generator state is 4", generator))
        var metrics = good; metrics.floatArrays["metrics/loss"] = .init(shape: [1], values: [1]); cases.append(("metrics arrays", metrics))
        // Names the schema does not have, or in the wrong kind of dataset.
        var unknown = good; unknown.floatArrays["evil"] = .init(shape: [1], values: [0]); cases.append(("unknown Float32 dataset 'evil'", unknown))
        var wrongKind = good; wrongKind.floatArrays["state/step"] = .init(shape: [1], values: [2]); cases.append(("unknown Float32 dataset 'state/step'", wrongKind))
        var extraInt = good; extraInt.intArrays["state/extra"] = [1]; cases.append(("unknown Int64 dataset 'state/extra'", extraInt))
        var extraString = good; extraString.strings["base/comment"] = "x"; cases.append(("unknown string dataset 'base/comment'", extraString))
        var orphan = good; orphan.floatArrays["optimizer/v/base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"] = .init(shape: [1], values: [0])
        cases.append(("belong to no adapter tensor", orphan))
        // Adapter tensors the recipe does not describe.
        func withRecipe(_ change: (inout Recipe) -> Void) -> HDF5Archive {
            var recipe = Self.recipe
            change(&recipe)
            var archive = good
            archive.strings["recipe"] = recipe.yaml
            return archive
        }
        cases.append(("rank 2 but the checkpoint's recipe says lora.rank 3", withRecipe { $0.lora.rank = 3 }))
        cases.append(("lora.targets and lora.layers do not select", withRecipe { $0.lora.targets = .names(["v_proj"]) }))
        cases.append(("lora.targets and lora.layers do not select", withRecipe { $0.lora.layers = [1] }))
        var loneB = good; loneB.floatArrays["adapter/base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"] = .init(shape: [3, 2], values: [Float](repeating: 0, count: 6))
        cases.append(("no matching lora_A", loneB))
        // Training state that would poison or overflow a resumed run.
        var momentShape = good; momentShape.floatArrays["optimizer/m/" + Self.a] = .init(shape: [4, 2], values: [Float](repeating: 0, count: 8))
        cases.append(("do not match its shape [2, 4]", momentShape))
        var momentNaN = good; momentNaN.floatArrays["optimizer/v/" + Self.a] = .init(shape: [2, 4], values: [0, 0, 0, .infinity, 0, 0, 0, 0])
        cases.append(("infinite", momentNaN))
        var hugeStep = good; hugeStep.intArrays["state/step"] = [.max]; cases.append(("'state/step' holds", hugeStep))
        var hugeCursor = good; hugeCursor.intArrays["state/data_cursor"] = [0, 1 << 62]; cases.append(("'state/data_cursor' holds", hugeCursor))
        var strayGenerator = good; strayGenerator.intArrays["state/dropout_rng/model.layers.9.mlp.up_proj"] = [1, 2, 3, 4]
        cases.append(("'model.layers.9.mlp.up_proj', which has no adapter tensors", strayGenerator))
        var best = good; best.floatArrays["state/best_validation"] = .init(shape: [2], values: [1, 2]); cases.append(("expected [1]", best))
        // Huge strings.
        var hugeRecipe = good; hugeRecipe.strings["recipe"] = String(repeating: "#", count: 2 << 20); cases.append(("its recipe is 2097152 bytes", hugeRecipe))
        var hugeName = good; hugeName.strings["base/name"] = String(repeating: "x", count: 1 << 15); cases.append(("'base/name' is 32768 bytes", hugeName))
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
