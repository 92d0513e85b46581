@testable import LorikeetCLI
import Lorikeet
import Formats
import Foundation
import LoRA
@testable import Architectures
import TensorCore
import TestSupport
@testable import Training
@testable import Export
import XCTest

/// A LoRA adapter trained by PEFT itself (Fixtures/peft-trained, written by
/// scripts/fixtures/lora/make_peft_trained_adapter.py with peft 0.21.2 / transformers 5.23 /
/// torch 2.15: r=4, alpha=8, q/k/v/o/gate/up/down, 40 AdamW steps on FOLDOC text) over the
/// tiny Llama fixture, as Lorikeet's commands use it with the tiny Llama GGUF that llama.cpp's
/// converter wrote (Q/K rows permuted for its RoPE, Llama 3 rope_freqs):
/// - generate/logits (unmerged, whole prompt and KV cache) give PEFT's logits;
/// - merge gives the logits of PEFT's `merge_and_unload()`;
/// - the llama.cpp LoRA GGUF equals what llama.cpp's own convert_lora_to_gguf.py wrote;
/// - the PEFT export of a checkpoint holding that adapter equals PEFT's saved folder.
final class PEFTTrainedAdapterTests: XCTestCase {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let folder = here.appendingPathComponent("Fixtures/peft-trained").path
    static let baseGGUF = here.deletingLastPathComponent().appendingPathComponent("ArchitecturesTests/Fixtures/llama/model.gguf").path
    static let baseHF = here.deletingLastPathComponent().appendingPathComponent("ArchitecturesTests/Fixtures/llama").path

    struct Expected: Decodable { let ids: [[Int32]] }

    var directory = ""
    var ids: [[Int32]] = []
    /// PEFT's logits, each [N, T, V]: "base" (no adapter), "adapter" (unmerged), "merged".
    var reference: [String: Tensor] = [:]

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-peft-trained-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        ids = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/expected.json"))).ids
        reference = try SafetensorsFile(path: Self.folder + "/logits.safetensors").tensors()
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// The whole-sequence logits of `model` for every sequence, [N, T, V].
    func logits(_ model: DecoderModel) -> Tensor {
        let (n, t) = (ids.count, ids[0].count)
        return noGrad { model.logits(ids: IntTensor(shape: [n, t], scalars: ids.flatMap { $0 }), positions: .positions(batch: n, length: t)) }
    }

    func reference(_ key: String) throws -> Tensor { try XCTUnwrap(reference[key], "logits.safetensors has no '\(key)'") }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    // MARK: generate and logits

    /// `generate` loads the model as a `BaseModel` and applies the folder with
    /// `apply`; the whole-prompt logits must be PEFT's. The adapter moves the logits by
    /// far more than the tolerance, so ignoring it (or a layer of it) fails.
    func testGeneratePathGivesPEFTLogits() throws {
        let session = try BaseModel(loading: Self.baseGGUF)
        let base = logits(session.model)
        XCTAssertLessThanOrEqual(maxDifference(base.scalars, try reference("base").scalars), 1e-4, "the base GGUF alone must be transformers' base")
        try session.apply(AdapterSource.load(Self.folder))
        let ours = logits(session.model)
        XCTAssertEqual(ours.shape, try reference("adapter").shape)
        XCTAssertLessThanOrEqual(maxDifference(ours.scalars, try reference("adapter").scalars), 1e-4)
        XCTAssertGreaterThan(maxDifference(base.scalars, try reference("adapter").scalars), 1, "the trained adapter must matter")
    }

    /// `lorikeet logits --model GGUF --adapter FOLDER` writes PEFT's logits.
    func testLogitsCommandGivesPEFTLogits() throws {
        let expected = try reference("adapter"), (t, v) = (expected.shape[1], expected.shape[2])
        for (n, sequence) in ids.enumerated() {
            let out = directory + "/logits-\(n).safetensors"
            try LogitsCommand.parse(["--model", Self.baseGGUF, "--adapter", Self.folder, "--ids", sequence.map(String.init).joined(separator: ","),
                                     "--output", out]).run()
            let written = try XCTUnwrap(SafetensorsFile(path: out).tensors()["logits"])
            XCTAssertEqual(written.shape, [t, v])
            XCTAssertLessThanOrEqual(maxDifference(written.scalars, Array(expected.scalars[(n * t * v)..<((n + 1) * t * v)])), 1e-4, "sequence \(n)")
        }
    }

    /// Decoding with the KV cache (a prompt of 3, then one token at a time), as the generator
    /// does, gives PEFT's logits at every position.
    func testCachedDecodingGivesPEFTLogits() throws {
        let session = try BaseModel(loading: Self.baseGGUF)
        try session.apply(AdapterSource.load(Self.folder))
        let expected = try reference("adapter"), (t, v) = (expected.shape[1], expected.shape[2])
        for (n, sequence) in ids.enumerated() {
            let cache = session.model.makeCache(capacity: t)
            var chunks: [Range<Int>] = [0..<3]
            chunks += (3..<t).map { $0..<($0 + 1) }
            for chunk in chunks {
                let got = session.model.nextTokenLogits(ids: Array(sequence[chunk]), cache: cache)
                let row = (n * t + chunk.upperBound - 1) * v
                XCTAssertLessThanOrEqual(maxDifference(got, Array(expected.scalars[row..<(row + v)])), 1e-4, "sequence \(n) position \(chunk.upperBound - 1)")
            }
        }
    }

    // MARK: merge

    /// `lorikeet merge --format gguf --quant f32` over the converter-written GGUF, read back by
    /// Lorikeet's GGUF loader, gives the logits of PEFT's merge_and_unload().
    func testMergedGGUFGivesPEFTMergedLogits() throws {
        let out = directory + "/merged.gguf"
        try MergeCommand.parse(["--model", Self.baseGGUF, "--adapter", Self.folder, "--output", out, "--format", "gguf", "--quant", "f32"]).run()
        XCTAssertLessThanOrEqual(maxDifference(logits(try DecoderModel(ggufPath: out)).scalars, try reference("merged").scalars), 1e-4)
    }

    /// `lorikeet merge --format safetensors --dtype f32` over the tiny Llama's Hugging Face
    /// folder, read back by Lorikeet's safetensors loader, gives PEFT's merged logits, and
    /// config.json keeps the fields transformers builds the model from. (Over the tiny GGUF a
    /// safetensors folder cannot be written yet: its SentencePiece tokenizer has no tokenizer.json
    /// writer; the GGUF merge above covers that base.)
    func testMergedSafetensorsFolderGivesPEFTMergedLogits() throws {
        let out = directory + "/merged-hf"
        try MergeCommand.parse(["--model", Self.baseHF, "--adapter", Self.folder, "--output", out, "--format", "safetensors", "--dtype", "f32"]).run()
        XCTAssertLessThanOrEqual(maxDifference(logits(try DecoderModel(huggingFaceFolder: out)).scalars, try reference("merged").scalars), 1e-4)
        let config = try JSONValue(contentsOf: out + "/config.json"), source = try JSONValue(contentsOf: Self.baseHF + "/config.json")
        for key in ["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps", "rope_parameters", "tie_word_embeddings"] {
            XCTAssertEqual(config[key], source[key], key)
        }
        XCTAssertEqual(config["dtype"]?.string, "float32")
    }

    // MARK: export

    /// A Lorikeet checkpoint (recipe r=4, alpha=8, the seven projections) holding PEFT's trained
    /// tensors: what `lorikeet export` reads when the adapter was trained here.
    func writeCheckpoint() throws -> String {
        let path = directory + "/adapter.h5"
        try writeAdapterCheckpoint(
            to: path,
            overrides: ["lora.rank=4", "lora.alpha=8", "lora.dropout=0", "lora.targets=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"],
            base: ["name": "Tests/ArchitecturesTests/Fixtures/llama", "license": "apache-2.0"],
            adapterTensors: Self.folder + "/adapter_model.safetensors")
        return path
    }

    /// Our LoRA GGUF, from the PEFT folder and from a checkpoint holding the same adapter,
    /// equals llama.cpp's convert_lora_to_gguf.py output (Fixtures/peft-trained/llama-cpp-lora.gguf):
    /// the same tensor names (`blk.N.<gguf name>.weight.lora_{a,b}`), the same ggml dimensions
    /// (lora_a [I, r], lora_b [r, O]: ggml lists the fastest-varying dimension first), the same
    /// values (Q/K lora_b rows permuted as the converter permutes the base's Q/K), and the
    /// metadata llama.cpp reads to apply an adapter.
    func testGGUFExportEqualsLlamaCppConverter() throws {
        let theirs = try GGUFFile(path: Self.folder + "/llama-cpp-lora.gguf")
        let fromFolder = directory + "/from-peft.gguf", fromCheckpoint = directory + "/from-checkpoint.gguf"
        try ExportCommand.parse(["--adapter", Self.folder, "--format", "gguf", "--model", Self.baseGGUF, "--output", fromFolder]).run()
        try ExportCommand.parse(["--adapter", try writeCheckpoint(), "--format", "gguf", "--model", Self.baseGGUF, "--output", fromCheckpoint]).run()
        for path in [fromFolder, fromCheckpoint] {
            let ours = try GGUFFile(path: path)
            for key in ["general.architecture", "general.type", "adapter.type"] {
                XCTAssertEqual(ours.metadata[key]?.string, theirs.metadata[key]?.string, key)
            }
            XCTAssertEqual(try XCTUnwrap(ours.metadata["adapter.lora.alpha"]?.double), try XCTUnwrap(theirs.metadata["adapter.lora.alpha"]?.double))
            XCTAssertEqual(ours.tensors.map(\.name).sorted(), theirs.tensors.map(\.name).sorted())
            XCTAssertEqual(theirs.tensors.count, 28)
            for info in theirs.tensors {
                let mine = try XCTUnwrap(ours.tensor(info.name), info.name)
                XCTAssertEqual(mine.dimensions, info.dimensions, info.name)
                XCTAssertEqual(GGUFMatrix(file: ours, info: mine).decoded().scalars, GGUFMatrix(file: theirs, info: info).decoded().scalars, info.name)
            }
        }
    }

    /// `lorikeet export --format peft` of a checkpoint holding PEFT's trained adapter writes
    /// PEFT's tensors (names, shapes, bits) and the adapter_config.json fields PEFT needs to
    /// rebuild the same LoRA (it fills the rest with its defaults).
    func testPEFTExportEqualsPEFTSavedFolder() throws {
        let out = directory + "/peft"
        try ExportCommand.parse(["--adapter", try writeCheckpoint(), "--format", "peft", "--output", out]).run()
        let theirs = try SafetensorsFile(path: Self.folder + "/adapter_model.safetensors").tensors()
        let ours = try SafetensorsFile(path: out + "/adapter_model.safetensors").tensors()
        XCTAssertEqual(ours.keys.sorted(), theirs.keys.sorted())
        XCTAssertEqual(theirs.count, 28)
        for (name, tensor) in theirs {
            XCTAssertEqual(ours[name]?.shape, tensor.shape, name)
            XCTAssertEqual(ours[name]?.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), name)
        }
        let config = try JSONValue(contentsOf: out + "/adapter_config.json"), peft = try JSONValue(contentsOf: Self.folder + "/adapter_config.json")
        for key in ["peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora", "bias", "fan_in_fan_out",
                    "modules_to_save", "layers_to_transform", "base_model_name_or_path"] {
            XCTAssertEqual(config[key], peft[key], key)
        }
        // A set for PEFT (it matches module names against it); its saved order is arbitrary.
        XCTAssertEqual(Set(config["target_modules"]?.array?.compactMap(\.string) ?? []), Set(peft["target_modules"]?.array?.compactMap(\.string) ?? []))
    }
}
