@testable import Training
import XCTest

/// Recipes: defaults, YAML, overrides, and errors that name the key and the way out.
final class RecipeTests: XCTestCase {
    func testYAMLAndOverridesAndRoundTrip() throws {
        var document = try RecipeDocument(yaml: """
        model:
          path: model.gguf
        lora:
          rank: 8
          targets: [q_proj, v_proj]
        data:
          fields:
            prompt: question
        training:
          learning_rate: 1e-4
        """, source: "r.yaml")
        try document.override("training.steps=20")
        try document.override("lora.layers=[0, 1]")
        let recipe = try Recipe(document)
        XCTAssertEqual(recipe.model.path, "model.gguf")
        XCTAssertEqual(recipe.lora.rank, 8)
        XCTAssertEqual(recipe.lora.targets, .names(["q_proj", "v_proj"]))
        XCTAssertEqual(recipe.lora.layers, [0, 1])
        XCTAssertEqual(recipe.data.fields.prompt, "question")
        XCTAssertEqual(recipe.training.learningRate, 1e-4)
        XCTAssertEqual(recipe.training.steps, 20)
        XCTAssertEqual(recipe.lora.alpha, 32)  // a default
        // The effective recipe saved in checkpoints reads back to the same values.
        XCTAssertEqual(try RecipeDocument(yaml: recipe.yaml, source: "saved"), document)
    }

    func testUnknownKeysNameTheClosestValidKey() {
        XCTAssertThrowsError(try RecipeDocument(yaml: "training:\n  learning_rat: 1e-4\n", source: "r.yaml")) { error in
            XCTAssertEqual("\(error)", "r.yaml: unknown recipe key 'training.learning_rat'. Did you mean 'training.learning_rate'?")
        }
        var document = RecipeDocument()
        XCTAssertThrowsError(try document.override("lora.rnak=4")) { XCTAssertTrue("\($0)".contains("Did you mean 'lora.rank'?"), "\($0)") }
        XCTAssertThrowsError(try RecipeDocument(yaml: "optimiser:\n  x: 1\n", source: "r.yaml")) { XCTAssertTrue("\($0)".contains("'optimiser'"), "\($0)") }
    }

    func testBadValuesAndCustomTagsAreRefused() throws {
        let cases: [(String, String)] = [
            ("quantization.base=int3", "one of nf4, q8_0, f32, source"),
            ("lora.rank=0", "an integer ≥ 1"),
            ("training.schedule=step", "one of constant, linear, cosine"),
            ("lora.dropout=2", "a number in"),
        ]
        for (assignment, expected) in cases {
            var document = RecipeDocument()
            try document.override(assignment)
            XCTAssertThrowsError(try Recipe(document)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        XCTAssertThrowsError(try RecipeDocument(yaml: "model:\n  path: !!python/object:os.system x\n", source: "evil.yaml")) {
            XCTAssertTrue("\($0)".contains("not allowed"), "\($0)")
        }
        XCTAssertThrowsError(try RecipeDocument(yaml: "model: [\n", source: "broken.yaml")) { XCTAssertTrue("\($0)".hasPrefix("broken.yaml"), "\($0)") }
    }

    /// Found by scripts/fuzz.sh recipe and set: a base-60 integer too large for an Int
    /// ("2222222222222222:22…") trapped inside Yams's integer reader. Integers are now read by
    /// `RecipeDocument.integer`, which returns nil on overflow.
    func testFuzzFoundOverflowingBase60IntegersAreNotFatal() throws {
        let yaml = "L Q::*: 222:2222222222222222:2244:4:44"  // the recipe harness's input, verbatim
        XCTAssertThrowsError(try RecipeDocument(yaml: yaml, source: "fuzz.yaml")) { XCTAssertTrue("\($0)".contains("'L Q::*'"), "\($0)") }
        var overridden = RecipeDocument()  // the set harness's input, verbatim
        XCTAssertThrowsError(try overridden.override("lor-=888888888888888:888888888888888888888888:8888888888:8888888888888888888"))
        // Under a real key the value is read (as a base-60 float) and refused where an integer belongs.
        let steps = try RecipeDocument(yaml: "training:\n  steps: 222:2222222222222222:2244:4:44\n", source: "steps.yaml")
        XCTAssertThrowsError(try Recipe(steps)) { XCTAssertTrue("\($0)".contains("training.steps"), "\($0)") }
        XCTAssertEqual(RecipeDocument.integer("12"), 12)
        XCTAssertEqual(RecipeDocument.integer("-1_000"), -1000)
        XCTAssertEqual(RecipeDocument.integer("0x1F"), 31)
        XCTAssertEqual(RecipeDocument.integer("0o17"), 15)
        XCTAssertEqual(RecipeDocument.integer("017"), 15)
        XCTAssertEqual(RecipeDocument.integer("0b101"), 5)
        XCTAssertEqual(RecipeDocument.integer("-9223372036854775808"), Int.min)
        XCTAssertNil(RecipeDocument.integer("9223372036854775808"))
        XCTAssertNil(RecipeDocument.integer("1e5"))
        XCTAssertNil(RecipeDocument.integer("1:30"))
        XCTAssertNil(RecipeDocument.integer(""))
    }
}
