import Foundation
import Formats
import Architectures
import Training
import XCTest

/// The short names of the cached models (`smollm2`, `gemma3-270m`, `qwen2.5-coder-0.5b`) work
/// wherever a model path does; an unknown name lists them.
final class ShortModelNameTests: XCTestCase {
    func testRealTestBasesByShortName() throws {
        for (name, path, words) in [("gemma3-270m", CacheLocation.gemma3Model, ["gemma3: 18 layers", ModelLicense.identify("gemma").line, "none in the file: Lorikeet's built-in turn template"]),
                                    ("qwen2.5-coder-0.5b", CacheLocation.qwenCoderModel, ["qwen2: 24 layers", "vocab 151936"])] {
            guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) missing: run scripts/setup.sh") }
            XCTAssertEqual(try ModelLocation.resolve(name), .gguf(path))
            let cache = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-names-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: cache) }
            let result = try DataPreviewCommandTests.run(["inspect", name], cache: cache)
            XCTAssertEqual(result.status, 0, result.output)
            for word in words { XCTAssertTrue(result.output.contains(word), "\(name): \(word)\n\(result.output)") }
        }
    }

    func testUnknownNameListsTheShortNames() {
        XCTAssertThrowsError(try ModelLocation.resolve("gemma3-27b")) { error in
            let message = "\(error)"
            for name in ["'smollm2'", "'gemma3-270m'", "'qwen2.5-coder-0.5b'"] { XCTAssertTrue(message.contains(name), message) }
        }
        XCTAssertEqual(ModelLocation.namedModels.map(\.name), ["smollm2", "gemma3-270m", "qwen2.5-coder-0.5b"])
    }

    /// Every recipe under recipes/ parses and names its base by a short name.
    func testRecipesParseAndNameTheirBase() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("recipes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(files, ["gemma3-270m-foldoc.yaml", "qwen2.5-coder-0.5b-foldoc.yaml", "smollm2-foldoc.yaml"])
        for file in files {
            let recipe = try Recipe(yaml: String(contentsOfFile: folder + "/" + file, encoding: .utf8), source: file)
            XCTAssertEqual(recipe.model.path + "-foldoc.yaml", file)
            XCTAssertTrue(ModelLocation.namedModels.contains { $0.name == recipe.model.path }, file)
        }
    }
}
