import Foundation
import Formats
import Architectures
import TensorCore
import XCTest
@testable import Lorikeet

/// A Gemma 3 base (the tiny gemma3 fixture llama.cpp's converter wrote, with `general.license:
/// gemma` added) taken through every command as a user runs them: `inspect`, `train`, `merge`
/// and `export` each print the same license line naming Gemma's terms as restrictive, and the
/// license travels into the checkpoint, the PEFT card, the LoRA GGUF and the merged GGUF. The
/// merged GGUF (norms back to the stored 1 + w, sandwich norms renamed) gives the logits of the
/// base with the adapter attached.
final class GemmaLicenseTravelTests: XCTestCase {
    var directory = ""
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures/gemma3/model.gguf").path
    let gemmaLine = ModelLicense.identify("gemma").line

    override func setUpWithError() throws {
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: DataPreviewCommandTests.executable), "build with swift build --build-tests")
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-gemma-license-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) } }

    /// The fixture's tensors and metadata, with a name and `general.license: gemma`.
    func writeBase() throws -> String {
        let file = try GGUFFile(path: Self.fixture)
        var metadata: [(String, GGUFValue)] = [("general.license", .string("gemma"))]
        for key in file.metadataKeys where key != "general.alignment" && key != "general.license" {
            metadata.append((key, key == "general.name" ? .string("Tiny Gemma 3") : try XCTUnwrap(file.metadata[key])))
        }
        let payloads = file.tensors.map { GGUFTensorPayload(name: $0.name, shape: $0.shape, type: $0.type, bytes: Array(file.bytes(of: $0))) }
        let path = directory + "/base.gguf"
        try GGUFFile.write(metadata: metadata, encoded: payloads, alignment: file.alignment, to: path)
        return path
    }

    func run(_ arguments: [String]) throws -> String {
        let result = try DataPreviewCommandTests.run(arguments, cache: directory + "/cache")
        XCTAssertEqual(result.status, 0, "lorikeet \(arguments.joined(separator: " ")):\n\(result.output)")
        return result.output
    }

    func testGemmaLicenseIsNamedByEveryCommandAndTravelsIntoEveryOutput() throws {
        let base = try writeBase()
        XCTAssertTrue(gemmaLine.contains("use restrictions (not an open-source license)"))
        XCTAssertTrue(try run(["inspect", base]).contains(gemmaLine))

        let line = #"{"text": "Sliding windows limit how far back a layer may look."}"#
        try String(repeating: line + "\n", count: 8).write(toFile: directory + "/data/train.jsonl", atomically: true, encoding: .utf8)
        try (line + "\n").write(toFile: directory + "/data/valid.jsonl", atomically: true, encoding: .utf8)
        try """
        model:
          path: \(base)
        data:
          path: \(directory)/data
          max_seq_len: 16
        lora:
          rank: 4
          alpha: 64
        training:
          steps: 3
          batch_size: 2
          learning_rate: 0.05
        output:
          dir: \(directory)/run

        """.write(toFile: directory + "/r.yaml", atomically: true, encoding: .utf8)
        XCTAssertTrue(try run(["train", directory + "/r.yaml"]).contains("license   " + gemmaLine))
        let checkpoint = try XCTUnwrap(RunDirectory(path: directory + "/run/r").latest)
        XCTAssertEqual(try Checkpoint(contentsOf: checkpoint).base.license, "gemma")
        XCTAssertTrue(try run(["inspect", checkpoint]).contains(gemmaLine))

        let peft = directory + "/peft"
        XCTAssertTrue(try run(["export", "--adapter", checkpoint, "--format", "peft", "--output", peft]).contains(gemmaLine))
        let card = try String(contentsOfFile: peft + "/README.md", encoding: .utf8)
        XCTAssertTrue(card.contains("license: gemma") && card.contains(gemmaLine), card)

        let lora = directory + "/lora.gguf"
        XCTAssertTrue(try run(["export", "--adapter", checkpoint, "--format", "gguf", "--output", lora]).contains(gemmaLine))
        XCTAssertEqual(try GGUFFile(path: lora).metadata["general.license"]?.string, "gemma")

        let merged = directory + "/merged.gguf"
        XCTAssertTrue(try run(["merge", "--adapter", checkpoint, "--output", merged, "--format", "gguf", "--quant", "f32", "--onto", "original"])
            .contains(gemmaLine))
        XCTAssertEqual(try GGUFFile(path: merged).metadata["general.license"]?.string, "gemma")

        // The merged file is the base with the adapter folded in.
        let ids = IntTensor(shape: [1, 7], scalars: [2, 17, 42, 5, 88, 3, 60])
        let unmerged = try BaseModel(loading: base)
        try unmerged.apply(AdapterSource.load(checkpoint), onto: .original)
        let expected = noGrad { unmerged.model.logits(ids: ids, positions: .positions(batch: 1, length: 7)) }
        let got = noGrad { try? DecoderModel(ggufPath: merged).logits(ids: ids, positions: .positions(batch: 1, length: 7)) }
        let mergedLogits = try XCTUnwrap(got)
        XCTAssertEqual(mergedLogits.shape, expected.shape)
        XCTAssertLessThanOrEqual(zip(mergedLogits.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)
        let plain = noGrad { try? DecoderModel(ggufPath: base).logits(ids: ids, positions: .positions(batch: 1, length: 7)) }
        XCTAssertGreaterThan(zip(try XCTUnwrap(plain).scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0, 1e-3, "training moved the adapter")
    }
}
