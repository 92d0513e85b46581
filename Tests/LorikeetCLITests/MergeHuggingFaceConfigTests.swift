@testable import LorikeetCLI
import Lorikeet
import Formats
import Foundation
import LoRA
@testable import Architectures
import Quantization
import TensorCore
import TestSupport
@testable import Training
@testable import Export
import XCTest

/// `lorikeet merge --format safetensors` from the tiny Gemma 3 and Qwen2 GGUFs converted by
/// llama.cpp (Tests/ArchitecturesTests/Fixtures): the folder's config.json carries each
/// family's variations (Gemma 3's windows, RoPE bases and query_pre_attn_scalar), agrees
/// with the config.json transformers wrote for the same model, and the folder read back gives
/// base + unmerged adapter's logits at positions past the sliding window.
final class MergeHuggingFaceConfigTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ArchitecturesTests/Fixtures")
    var directory = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-merge-hf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A checkpoint (r=4, all-linear) with random A and B for every projection of `base`.
    func writeCheckpoint(for base: String, license: String) throws -> String {
        var document = RecipeDocument()
        for s in ["lora.rank=4", "lora.alpha=8", "lora.dropout=0"] { try document.override(s) }
        var archive = HDF5Archive()
        archive.strings["recipe"] = try Recipe(document).yaml
        archive.strings["base/name"] = "Tiny"
        archive.strings["base/license"] = license
        var seed: UInt64 = 900
        for (module, layer) in try DecoderModel(ggufPath: base).namedLinears where module != "lm_head" {
            let weight = try XCTUnwrap((layer as? QuantizedLinear)?.weight, module)
            for (which, shape) in [("A", [4, weight.columns]), ("B", [weight.rows, 4])] {
                seed += 1
                archive.floatArrays["adapter/" + LoRAAdapter.pefName(module, which)] =
                    .init(shape: shape, values: Fixtures.tensor(shape, seed: seed, requiresGrad: false, scale: 0.2).scalars)
            }
        }
        let path = directory + "/adapter.h5"
        try archive.write(to: path)
        return path
    }

    /// Merges the fixture `family`'s GGUF with a random adapter and checks the folder's logits.
    func mergeAndCompare(_ family: String, vocab: Int) throws -> (folder: String, written: JSONValue, transformers: JSONValue) {
        let base = Self.fixtures.appendingPathComponent("\(family)/model.gguf").path
        let checkpoint = try writeCheckpoint(for: base, license: family.hasPrefix("gemma") ? "gemma" : "apache-2.0")
        let out = directory + "/merged-\(family)"
        try MergeCommand.parse(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors",
                                "--dtype", "f32", "--onto", "original"]).run()
        // 10 positions: past Gemma 3's window of 4, so windowed and global layers differ.
        let scalars = (0..<10).map { Int32(($0 * 37 + 5) % vocab) }
        let ids = IntTensor(shape: [1, 10], scalars: scalars), positions = IntTensor(shape: [1, 10], scalars: Array(0..<Int32(10)))
        let unmerged = try BaseModel(loading: base, requiresTokenizer: false)
        try unmerged.apply(AdapterSource.load(checkpoint), onto: .original)
        let expected = noGrad { unmerged.model.logits(ids: ids, positions: positions) }
        let merged = try DecoderModel(huggingFaceFolder: out)
        let got = noGrad { merged.logits(ids: ids, positions: positions) }
        XCTAssertEqual(got.shape, expected.shape)
        let difference = zip(got.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(difference, 1e-4, family)
        // The adapter changed the model, so agreeing is not agreeing with the base alone.
        let baseOnly = noGrad { try? DecoderModel(ggufPath: base).logits(ids: ids, positions: positions) }
        let change = zip(try XCTUnwrap(baseOnly).scalars, got.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(change, 1e-2, family)
        // For scripts/verify/merged_folder_transformers.py: the folder, the ids and Lorikeet's
        // logits of base + unmerged adapter, kept where LORIKEET_KEEP_MERGED says.
        if let keep = ProcessInfo.processInfo.environment["LORIKEET_KEEP_MERGED"] {
            let kept = keep + "/" + family
            try? FileManager.default.removeItem(atPath: kept)
            try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: out, toPath: kept)
            let record: [String: Any] = ["ids": scalars.map(Int.init), "shape": expected.shape, "logits": expected.scalars.map(Double.init)]
            try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: kept + "/lorikeet_logits.json"))
        }
        let transformers = try JSONValue(contentsOf: Self.fixtures.appendingPathComponent("\(family)/config.json").path)
        return (out, try JSONValue(contentsOf: out + "/config.json"), transformers)
    }

    func testGemma3FolderCarriesWindowsRopeBasesAndGivesTheUnmergedLogits() throws {
        let (out, written, transformers) = try mergeAndCompare("gemma3", vocab: 96)
        // Keys transformers wrote for this model (its fixture config.json) and Lorikeet must match.
        for key in ["model_type", "architectures", "layer_types", "sliding_window", "query_pre_attn_scalar", "head_dim",
                    "num_key_value_heads", "hidden_activation", "rope_parameters", "tie_word_embeddings", "vocab_size",
                    "bos_token_id", "eos_token_id", "pad_token_id", "final_logit_softcapping", "attn_logit_softcapping"] {
            XCTAssertEqual(written[key], transformers[key], key)
        }
        XCTAssertEqual(written["rope_parameters"]?["sliding_attention"]?["rope_theta"]?.double, 100)
        XCTAssertEqual(written["rope_parameters"]?["full_attention"]?["factor"]?.double, 8)
        // The folder has no tokenizer files (SentencePiece vocabulary), and its card says so.
        let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/tokenizer.json"))
        XCTAssertTrue(card.contains("Tokenizer: no tokenizer files"), card)
    }

    func testQwen2FolderGivesTheUnmergedLogits() throws {
        let (_, written, transformers) = try mergeAndCompare("qwen2", vocab: 96)
        for key in ["model_type", "architectures", "num_key_value_heads", "hidden_act", "tie_word_embeddings",
                    "vocab_size", "use_sliding_window", "sliding_window", "layer_types"] {
            XCTAssertEqual(written[key], transformers[key], key)
        }
        XCTAssertEqual(written["rope_parameters"]?["rope_theta"]?.double, transformers["rope_parameters"]?["rope_theta"]?.double)
    }
}
