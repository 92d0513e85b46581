@testable import LorikeetCLI
import Lorikeet
import Formats
import Tokenization
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
        // Its SentencePiece vocabulary is written as tokenizer files, so the card has no note.
        let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/tokenizer.json"))
        XCTAssertFalse(card.contains("Tokenizer:"), card)
    }

    /// The tiny Gemma 3 fixture with a Gemma-shaped vocabulary of its 96 ids in place of its
    /// Llama-style toy one: control tokens (<pad>, <eos>, <bos>, <unk>, <mask>, turn markers,
    /// unused), user-defined "[multimodal]", newlines and space runs, a few byte tokens, and
    /// pieces scored best-first by id as in a Gemma file.
    func writeGemmaVocabularyFixture() throws -> String {
        let source = try GGUFFile(path: Self.fixtures.appendingPathComponent("gemma3/model.gguf").path)
        var tokens: [(String, Int)] = [("<pad>", 3), ("<eos>", 3), ("<bos>", 3), ("<unk>", 3), ("<mask>", 3), ("[multimodal]", 4),
                                       ("<start_of_turn>", 3), ("<end_of_turn>", 3), ("\n", 4), ("\n\n", 4), ("  ", 4), ("   ", 4), ("    ", 4)]
        tokens += [0x09, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xCC, 0x81].map { (String(format: "<0x%02X>", $0), 6) }
        let pieces = ["▁", "e", "l", "o", "h", "w", "r", "d", "t", "s", "a", "c", "f", "é", "n", "u", "k", "m", "y", "i", "p", "日",
                      "he", "ll", "▁h", "▁w", "or", "ld", "llo", "▁he", "▁hello", "▁wor", "▁world", "es", "▁t", "▁te", "▁test",
                      "ca", "caf", "café", "▁café", "▁cafe", "ok", "us", "er", "use", "user", "mo", "mod", "model", "en", "▁en", "▁end"]
        tokens += pieces.map { ($0, 1) }
        var unused = 0
        while tokens.count < 96 { tokens.append(("<unused\(unused)>", 3)); unused += 1 }
        XCTAssertEqual(tokens.count, 96)
        var metadata: [(String, GGUFValue)] = []
        for key in source.metadataKeys where !key.hasPrefix("tokenizer.") { metadata.append((key, try XCTUnwrap(source.metadata[key]))) }
        metadata += [
            ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0.0) })),
            ("tokenizer.ggml.scores", .array(tokens.enumerated().map { .float32($1.1 == 1 ? -Float($0) : 0) })),
            ("tokenizer.ggml.token_type", .array(tokens.map { .int32(Int32($0.1)) })),
            ("tokenizer.ggml.bos_token_id", .uint32(2)), ("tokenizer.ggml.eos_token_id", .uint32(1)),
            ("tokenizer.ggml.unknown_token_id", .uint32(3)), ("tokenizer.ggml.padding_token_id", .uint32(0)),
            ("tokenizer.ggml.add_bos_token", .bool(true)), ("tokenizer.ggml.add_eos_token", .bool(false)),
            ("tokenizer.ggml.add_space_prefix", .bool(false)),
        ]
        let payloads = source.tensors.map { GGUFTensorPayload(name: $0.name, shape: $0.shape, type: $0.type, bytes: Array(source.bytes(of: $0))) }
        let path = directory + "/gemma-vocabulary.gguf"
        try GGUFFile.write(metadata: metadata, encoded: payloads, to: path)
        return path
    }

    /// A merged Gemma 3 folder gets tokenizer.json and tokenizer_config.json from the GGUF's
    /// SentencePiece vocabulary and loads back as a model whose ids equal the GGUF's on text
    /// with space runs, newlines, special tokens, a decomposed accent and byte fallback.
    func testMergedGemmaFolderTokenizesAsItsGGUF() throws {
        let base = try writeGemmaVocabularyFixture()
        let checkpoint = try writeCheckpoint(for: base, license: "gemma")
        let out = directory + "/merged-gemma-vocabulary"
        try MergeCommand.parse(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors", "--dtype", "f32"]).run()
        for name in ["tokenizer.json", "tokenizer_config.json"] { XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + name), name) }
        let gguf = try BaseModel(loading: base), folder = try BaseModel(loading: out)
        XCTAssertEqual(folder.tokenizer.vocabularySize, 96)
        XCTAssertEqual(folder.tokenizer.bos, 2)
        XCTAssertEqual(folder.tokenizer.eos, 1)
        let texts = ["hello world", "  hello   world  ", "hello\nworld\n\n\nend\n", "café cafe\u{301} € 😀\tok",
                     "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", "[multimodal] test日 ok", "    ", ""]
        for text in texts {
            let expected = try gguf.tokenizer.encode(text)
            XCTAssertEqual(try folder.tokenizer.encode(text), expected, text.debugDescription)
            // Without special-token parsing the GGUF's space runs ("  ", user-defined) are not
            // matched whole, while in tokenizer.json they are the ▁ runs BPE merges: compare
            // only text without such runs.
            if !text.contains("  ") {
                XCTAssertEqual(try folder.tokenizer.encode(text, addBOS: false, parseSpecial: false),
                               try gguf.tokenizer.encode(text, addBOS: false, parseSpecial: false), text.debugDescription)
            }
            XCTAssertEqual(folder.tokenizer.decode(expected), gguf.tokenizer.decode(expected), text.debugDescription)
        }
        // The texts reach what they are meant to: user-defined and control tokens, byte fallback, unknown.
        let all = try texts.flatMap { try gguf.tokenizer.encode($0) }
        for id: Int32 in [5, 6, 8, 9, 10, 11, 12, 13, 14, 16, 21, 22] { XCTAssertTrue(all.contains(id), "id \(id) never used") }
        // The GGUF has no chat template, so the folder carries Lorikeet's built-in Gemma 3 one.
        let config = try JSONValue(contentsOf: out + "/tokenizer_config.json")
        XCTAssertEqual(config["bos_token"]?.string, "<bos>")
        XCTAssertEqual(config["eos_token"]?.string, "<eos>")
        XCTAssertEqual(config["pad_token"]?.string, "<pad>")
        XCTAssertEqual(config["chat_template"]?.string, ChatTemplate.builtInSource(architecture: "gemma3"))
        XCTAssertNotNil(folder.chatTemplate)
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
