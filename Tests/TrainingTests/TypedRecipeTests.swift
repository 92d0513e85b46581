@testable import Training
import Architectures
import Datasets
import LoRA
import TensorCore
import XCTest

/// The typed recipe: its key list and defaults come from the `Codable` sections, and reading,
/// writing and checking go through them.
final class TypedRecipeTests: XCTestCase {
    /// Every key and default of the hand-written schema recipes had before the typed recipe: a
    /// recipe written for an earlier version reads the same now.
    static let earlierSchema: [(String, RecipeValue)] = [
        ("model.path", .string("smollm2")), ("data.path", .string("data/foldoc")), ("data.format", .string("auto")),
        ("data.fields.text", .string("text")), ("data.fields.prompt", .string("prompt")), ("data.fields.completion", .string("completion")),
        ("data.fields.messages", .string("messages")), ("data.fields.tools", .string("tools")),
        ("data.fields.instruction", .string("instruction")), ("data.fields.input", .string("input")), ("data.fields.output", .string("output")),
        ("data.train_on", .string("assistant")), ("data.max_seq_len", .int(256)), ("data.packing", .bool(true)),
        ("data.over_long", .string("truncate")), ("data.valid_fraction", .double(0.05)), ("data.skip_invalid", .bool(false)),
        ("lora.rank", .int(16)), ("lora.alpha", .double(32)), ("lora.dropout", .double(0.05)), ("lora.rslora", .bool(false)),
        ("lora.targets", .string("all-linear")), ("lora.layers", .null), ("lora.init", .string("default")), ("lora.loftq_iter", .int(1)),
        ("quantization.base", .string("source")), ("training.steps", .int(150)), ("training.epochs", .int(0)), ("training.batch_size", .int(4)),
        ("training.grad_accumulation", .int(1)), ("training.gradient_checkpointing", .bool(true)), ("training.checkpoint_keep_mb", .int(0)),
        ("training.compute_dtype", .string("f32")), ("training.learning_rate", .double(2e-4)), ("training.schedule", .string("cosine")),
        ("training.warmup_steps", .int(10)), ("training.min_lr_ratio", .double(0.1)), ("training.weight_decay", .double(0)),
        ("training.max_grad_norm", .double(1)), ("training.eval_every", .int(50)), ("training.eval_batches", .int(0)),
        ("training.early_stopping_patience", .int(0)), ("training.seed", .int(42)), ("training.log_every", .int(10)),
        ("output.dir", .string("checkpoints")), ("output.name", .string("")), ("output.save_every", .int(50)), ("output.keep_last", .int(2)),
    ]

    func testKeysAndDefaultsComeFromTheTypedSections() throws {
        XCTAssertEqual(RecipeDocument.keys, Self.earlierSchema.map(\.0), "the same keys in the same order")
        for (key, value) in Self.earlierSchema {
            let derived = try XCTUnwrap(RecipeDocument.defaults[key], key)
            switch (derived, value) {
            case (.double(let a), .double(let b)): XCTAssertEqual(a, b, accuracy: 1e-12, key)
            case (.int(let a), .double(let b)), (.double(let b), .int(let a)): XCTAssertEqual(Double(a), b, key)
            default: XCTAssertEqual(derived, value, key)
            }
        }
        // The documents of the defaults and of `Recipe()` are one and the same.
        XCTAssertEqual(try Recipe(RecipeDocument()), Recipe())
    }

    func testEveryKeyRoundTripsThroughYAML() throws {
        var recipe = Recipe()
        recipe.model.path = "some/model.gguf"
        recipe.data.format = .messages
        recipe.data.fields.prompt = "question: what"
        recipe.lora.targets = .names(["q_proj", "v_proj"])
        recipe.lora.layers = [0, 3]
        recipe.lora.initialization = .pissa
        recipe.quantization.base = .q8_0
        recipe.training.maxGradNorm = nil
        recipe.training.computeDType = .bf16
        recipe.training.learningRate = 3e-5
        recipe.training.seed = 7
        recipe.output.name = "123"
        let back = try Recipe(yaml: recipe.yaml, source: "saved")
        XCTAssertEqual(back, recipe)
        XCTAssertEqual(back.execution, ExecutionOptions(computeDType: .bf16, gradientCheckpointing: true, checkpointKeepBytes: 0))
        XCTAssertEqual(back.lora.config, LoRAConfig(rank: 16, alpha: 32, dropout: 0.05, targets: .names(["q_proj", "v_proj"]), layers: [0, 3],
                                                    initialization: .pissa))
    }

    func testValuesOfTheWrongKindNameTheKeyAndWhatIsValid() {
        func message(_ yaml: String) -> String {
            do { _ = try Recipe(yaml: yaml, source: "r.yaml"); return "accepted" } catch { return error.description }
        }
        XCTAssertEqual(message("lora:\n  rank: many\n"), "recipe key 'lora.rank': many is not valid; expected an integer")
        XCTAssertEqual(message("quantization:\n  base: nf5\n"), "recipe key 'quantization.base': nf5 is not valid; expected one of nf4, q8_0, f32, source")
        XCTAssertEqual(message("training:\n  batch_size: 0\n"), "recipe key 'training.batch_size': 0 is not valid; expected an integer ≥ 1")
        XCTAssertEqual(message("lora:\n  dropout: 2\n"), "recipe key 'lora.dropout': 2.0 is not valid; expected a number in 0.0...0.9")
        XCTAssertEqual(message("lora:\n  layers: [0, x]\n"), "recipe key 'lora.layers': x is not valid; expected a list of integers")
        XCTAssertEqual(message("data:\n  packing: maybe\n"), "recipe key 'data.packing': maybe is not valid; expected true or false")
        XCTAssertEqual(message("lora:\n  targets: []\n"), "recipe key 'lora.targets': [] is not valid; expected all-linear or a list of module names (q_proj, v_proj, …)")
        XCTAssertEqual(message("lora:\n  rnak: 8\n"), "r.yaml: unknown recipe key 'lora.rnak'. Did you mean 'lora.rank'?")
        // A single index is a one-layer list; null is every layer.
        XCTAssertEqual(try Recipe(yaml: "lora:\n  layers: 3\n", source: "r").lora.layers, [3])
        XCTAssertNil(try Recipe(yaml: "lora:\n  layers: null\n", source: "r").lora.layers)
        XCTAssertNil(try Recipe(yaml: "training:\n  max_grad_norm: 0\n", source: "r").training.clipping)
    }
}
