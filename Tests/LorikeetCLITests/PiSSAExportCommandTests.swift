@testable import LorikeetCLI
import Lorikeet
import Formats
import Foundation
@testable import Architectures
import TensorCore
@testable import Training
import XCTest

/// `lorikeet export` of a PiSSA checkpoint: the base is rewritten during training, so export
/// recomputes the initial decomposition from the exact base and writes PEFT's rank-2r
/// conversion. The checkpoint holds the PiSSA adapter PEFT trained
/// (TrainingTests/Fixtures/pissa-converted, scripts/fixtures/lora/make_pissa_conversion_goldens.py,
/// peft 0.21.2); the exported folder, loaded as `generate` loads a PEFT adapter over the
/// converter-written tiny GGUF, must give the trained PiSSA model's logits as PEFT computed them.
final class PiSSAExportCommandTests: XCTestCase {
    static let fixtures = PEFTTrainedAdapterTests.here.deletingLastPathComponent().appendingPathComponent("TrainingTests/Fixtures/pissa-converted").path
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-pissa-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    func writeCheckpoint(sha256: String) throws -> String {
        let path = directory + "/pissa-\(sha256.prefix(4)).h5"
        try writeAdapterCheckpoint(
            to: path,
            overrides: ["lora.rank=4", "lora.alpha=8", "lora.dropout=0", "quantization.base=f32", "lora.init=pissa"],
            base: ["name": "tiny-llama", "license": "apache-2.0", "path": PEFTTrainedAdapterTests.baseGGUF, "sha256": sha256],
            adapterTensors: Self.fixtures + "/trained.safetensors")
        return path
    }

    func testExportedPiSSAAdapterGivesTheTrainedModelOverTheOriginalGGUF() throws {
        let checkpoint = try writeCheckpoint(sha256: try SHA256.hexDigest(ofFile: PEFTTrainedAdapterTests.baseGGUF))
        let folder = directory + "/peft", gguf = directory + "/lora.gguf"
        try ExportCommand.parse(["--adapter", checkpoint, "--format", "peft", "--output", folder]).run()
        try ExportCommand.parse(["--adapter", checkpoint, "--format", "gguf", "--output", gguf]).run()

        let config = try JSONValue(contentsOf: folder + "/adapter_config.json")
        XCTAssertEqual(config["r"]?.int, 8)
        XCTAssertEqual(config["lora_alpha"]?.double, 16)
        let session = try BaseModel(loading: PEFTTrainedAdapterTests.baseGGUF)
        try session.apply(AdapterSource.load(folder))
        let ids = IntTensor(shape: [2, 8], scalars: [1, 17, 42, 5, 88, 3, 60, 9, 95, 0, 12, 12, 33, 71, 2, 40])
        let logits = noGrad { session.model.logits(ids: ids, positions: .positions(batch: 2, length: 8)) }
        let trained = try XCTUnwrap(SafetensorsFile(path: Self.fixtures + "/logits.safetensors").tensors()["trained"])
        XCTAssertLessThanOrEqual(zip(logits.scalars, trained.scalars).map { abs($0 - $1) }.max() ?? .infinity, 1e-4)

        let lora = try GGUFFile(path: gguf)
        XCTAssertEqual(lora.metadata["adapter.lora.alpha"]?.double, 16)
        XCTAssertEqual(lora.tensors.count, 28)
        XCTAssertEqual(lora.tensor("blk.0.attn_q.weight.lora_a")?.dimensions, [32, 8])
        XCTAssertEqual(lora.tensor("blk.0.attn_q.weight.lora_b")?.dimensions, [8, 32])
    }

    /// Another base would give another decomposition: refused by hash, naming the file.
    func testAnotherBaseIsRefused() throws {
        let checkpoint = try writeCheckpoint(sha256: String(repeating: "0", count: 64))
        XCTAssertThrowsError(try ExportCommand.parse(["--adapter", checkpoint, "--format", "peft", "--output", directory + "/peft"]).run()) {
            XCTAssertTrue("\($0)".contains("SHA-256") && "\($0)".contains("model.gguf"), "\($0)")
        }
    }
}
