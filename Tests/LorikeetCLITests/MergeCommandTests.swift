@testable import LorikeetCLI
import Lorikeet
import Formats
import Foundation
import LoRA
@testable import Architectures
import Quantization
import TensorCore
import TestSupport
import Tokenization
@testable import Training
@testable import Export
import XCTest

/// `lorikeet merge` end to end on a tiny Llama GGUF written here (q/k rows in GGUF order, a
/// byte-level BPE tokenizer in its metadata) and a checkpoint with a random, non-zero adapter:
/// every merged output, read back by Lorikeet's own loaders, gives the logits of base +
/// unmerged adapter.
final class MergeCommandTests: XCTestCase {
    var directory = ""
    let ids = IntTensor(shape: [1, 7], scalars: [1, 17, 42, 5, 60, 3, 33])
    let positions = IntTensor(shape: [1, 7], scalars: [0, 1, 2, 3, 4, 5, 6])

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-merge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    // MARK: fixtures

    static let config: ModelConfig = {
        var c = ModelConfig(family: .llama, vocabSize: 64, hiddenSize: 64, layerCount: 2, headCount: 4, kvHeadCount: 2,
                            intermediateSize: 96, rmsNormEps: 1e-5, ropeTheta: 10_000, maxPositions: 128, tieWordEmbeddings: true)
        c.headDim = 16
        return c
    }()

    /// Hugging Face name → weight of the tiny base (Hugging Face orientation and row order).
    static func baseWeights() -> [String: Tensor] {
        let c = config
        var seed: UInt64 = 100
        func t(_ shape: [Int], scale: Float) -> Tensor { seed += 1; return Fixtures.tensor(shape, seed: seed, requiresGrad: false, scale: scale) }
        var w: [String: Tensor] = [WeightNames.embedding: t([64, 64], scale: 1), WeightNames.finalNorm: t([64], scale: 0.2)]
        for i in 0..<c.layerCount {
            for (suffix, shape) in [("self_attn.q_proj", [64, 64]), ("self_attn.k_proj", [32, 64]), ("self_attn.v_proj", [32, 64]),
                                    ("self_attn.o_proj", [64, 64]), ("mlp.gate_proj", [96, 64]), ("mlp.up_proj", [96, 64]), ("mlp.down_proj", [64, 96])] {
                w[WeightNames.layer(i, suffix + ".weight")] = t(shape, scale: 0.3)
            }
            w[WeightNames.layer(i, "input_layernorm.weight")] = t([64], scale: 0.2)
            w[WeightNames.layer(i, "post_attention_layernorm.weight")] = t([64], scale: 0.2)
        }
        for (name, value) in w where value.rank == 1 { w[name] = Tensor(shape: value.shape, scalars: value.scalars.map { 1 + $0 }) }
        return w
    }

    /// A byte-level BPE vocabulary: three control tokens, letters, space, digits and a few merges.
    static let merges = ["Ġ t", "h e", "Ġt he", "i n", "e r", "a b", "c d"]
    static var tokens: [String] {
        var t = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + (UInt8(ascii: "a")...UInt8(ascii: "z")).map { String(UnicodeScalar($0)) }
        t += ["Ġ"] + (0...9).map(String.init) + ["Ġt", "he", "Ġthe", "in", "er", "ab", "cd"]
        while t.count < 64 { t.append("<unused\(t.count)>") }
        return t
    }

    /// Writes the tiny base as an F32 GGUF with Q/K rows permuted as llama.cpp's converter does.
    /// `ropeFreqs`: llama.cpp's Llama 3 RoPE divisors, one per rotary pair.
    func writeBaseGGUF(ropeFreqs: [Float]? = nil) throws -> String {
        let c = Self.config
        var tensors: [(name: String, tensor: Tensor)] = []
        if let ropeFreqs { tensors.append(("rope_freqs.weight", Tensor(shape: [ropeFreqs.count], scalars: ropeFreqs))) }
        for (name, value) in Self.baseWeights().sorted(by: { $0.key < $1.key }) {
            let gguf = try XCTUnwrap(GGUFWeightSource.ggufName(name, config: c))
            let module = String(name.dropLast(".weight".count))
            let heads = GGUFWeightSource.rotaryPermutedHeads(module, config: c)
            tensors.append((gguf, heads.map { MergedWeights.ggufRowOrder(value, heads: $0) } ?? value))
        }
        let types: [GGUFValue] = Self.tokens.indices.map { .int32($0 < 3 ? 3 : 1) }
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("general.name", .string("Tiny Base")), ("general.license", .string("llama3.2")),
            ("llama.block_count", .uint32(2)), ("llama.context_length", .uint32(128)), ("llama.embedding_length", .uint32(64)),
            ("llama.feed_forward_length", .uint32(96)), ("llama.attention.head_count", .uint32(4)), ("llama.attention.head_count_kv", .uint32(2)),
            ("llama.attention.key_length", .uint32(16)), ("llama.rope.freq_base", .float32(10_000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)), ("general.file_type", .uint32(0)),
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(Self.tokens.map(GGUFValue.string))), ("tokenizer.ggml.token_type", .array(types)),
            ("tokenizer.ggml.merges", .array(Self.merges.map(GGUFValue.string))),
            ("tokenizer.ggml.bos_token_id", .uint32(1)), ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.chat_template", .string("{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}")),
        ]
        let path = directory + "/base.gguf"
        try GGUFFile.write(metadata: metadata, tensors: tensors, to: path)
        return path
    }

    /// A Lorikeet checkpoint (recipe: r=4, all-linear, NF4 base) with random A and B.
    /// `wrongShape` gives one tensor another shape (an adapter for another base).
    func writeCheckpoint(wrongShape: String? = nil, settings: [String] = []) throws -> String {
        var document = RecipeDocument()
        for s in ["lora.rank=4", "lora.alpha=8", "lora.dropout=0"] + settings { try document.override(s) }
        let recipe = try Recipe(document)
        var archive = HDF5Archive()
        archive.strings["recipe"] = recipe.yaml
        archive.strings["base/name"] = "Tiny Base"
        archive.strings["base/license"] = "llama3.2"
        var seed: UInt64 = 500
        for (name, w) in Self.baseWeights() where w.rank == 2 && name != WeightNames.embedding {
            let module = String(name.dropLast(".weight".count))
            for (which, var shape) in [("A", [4, w.shape[1]]), ("B", [w.shape[0], 4])] {
                let key = LoRAAdapter.pefName(module, which)
                if key == wrongShape { shape[1] += 16 }
                seed += 1
                let t = Fixtures.tensor(shape, seed: seed, requiresGrad: false, scale: 0.2)
                archive.floatArrays["adapter/" + key] = .init(shape: shape, values: t.scalars)
            }
        }
        let path = directory + "/adapter.h5"
        try archive.write(to: path)
        return path
    }

    /// Logits of the base with the checkpoint attached unmerged, its base encoded as `onto` says.
    func unmergedLogits(base: String, checkpoint: String, onto: AdapterBase) throws -> Tensor {
        let model = try BaseModel(loading: base)
        try model.apply(AdapterSource.load(checkpoint), onto: onto)
        return logits(model.model)
    }

    func logits(_ model: DecoderModel) -> Tensor { noGrad { model.logits(ids: ids, positions: positions) } }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
    }

    func merge(_ arguments: [String]) throws {
        try MergeCommand.parse(arguments).run()
    }

    // MARK: tests

    func testSafetensorsFolderGivesTheUnmergedLogitsOntoEitherBase() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        var merged: [AdapterBase: Tensor] = [:]
        for onto in AdapterBase.allCases {
            let out = directory + "/merged-\(onto.rawValue)"
            try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors", "--dtype", "f32", "--onto", onto.rawValue])
            let expected = try unmergedLogits(base: base, checkpoint: checkpoint, onto: onto)
            let got = logits(try DecoderModel(huggingFaceFolder: out))
            XCTAssertLessThanOrEqual(maxDifference(got, expected), 1e-4, onto.rawValue)
            merged[onto] = got
            for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
            }
        }
        // The two bases differ (NF4 vs source), so --onto really chooses.
        XCTAssertGreaterThan(maxDifference(try XCTUnwrap(merged[.original]), try XCTUnwrap(merged[.trained])), 1e-3)
        // Merging changed the model: the base alone gives other logits.
        let baseOnly = logits(try DecoderModel(ggufPath: base))
        XCTAssertGreaterThan(maxDifference(baseOnly, try XCTUnwrap(merged[.original])), 1e-2)

        let out = directory + "/merged-original"
        let config = try JSONValue(contentsOf: out + "/config.json")
        XCTAssertEqual(config["architectures"]?.array?.first?.string, "LlamaForCausalLM")
        XCTAssertEqual(config["tie_word_embeddings"]?.bool, true)
        XCTAssertEqual(config["dtype"]?.string, "float32")
        XCTAssertEqual(config["eos_token_id"]?.int, 2)
        let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        XCTAssertTrue(card.contains("license: llama3.2") && card.contains("base_model: Tiny Base"), card)
        let tokenizerConfig = try JSONValue(contentsOf: out + "/tokenizer_config.json")
        XCTAssertEqual(tokenizerConfig["eos_token"]?.string, "<|im_end|>")
        XCTAssertNotNil(tokenizerConfig["chat_template"]?.string)
        // The written tokenizer.json splits text into the GGUF tokenizer's ids.
        let ours = try makeTokenizer(gguf: GGUFFile(path: base)), written = try makeTokenizer(tokenizerJSON: out + "/tokenizer.json")
        for text in ["the thin cat", "abcd 2024 there", "<|im_start|>the<|im_end|> in 7"] {
            let expected = try ours.encode(text)
            XCTAssertEqual(try written.encode(text), expected, text)
            XCTAssertGreaterThan(expected.count, 3)
        }
    }

    /// A Hugging Face base (the tiny Llama fixture) with a PEFT adapter folder: the merged
    /// folder copies the base's configuration and gives base + unmerged adapter's logits; a
    /// GGUF cannot be made from it (no GGUF metadata to carry).
    func testHuggingFaceBaseWithPEFTAdapter() throws {
        let base = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ArchitecturesTests/Fixtures/llama").path
        let peft = directory + "/peft"
        try FileManager.default.createDirectory(atPath: peft, withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj", "down_proj"], "bias": "none"}"#.utf8)
            .write(to: URL(fileURLWithPath: peft + "/adapter_config.json"))
        var tensors: [String: Tensor] = [:], seed: UInt64 = 900
        for layer in 0..<2 {
            for (module, out, input) in [("self_attn.q_proj", 32, 32), ("self_attn.v_proj", 16, 32), ("mlp.down_proj", 32, 48)] {
                let name = WeightNames.layer(layer, module)
                seed += 2
                tensors[LoRAAdapter.pefName(name, "A")] = Fixtures.tensor([2, input], seed: seed, requiresGrad: false, scale: 0.3)
                tensors[LoRAAdapter.pefName(name, "B")] = Fixtures.tensor([out, 2], seed: seed + 1, requiresGrad: false, scale: 0.3)
            }
        }
        try SafetensorsFile.write(tensors, to: peft + "/adapter_model.safetensors")
        let out = directory + "/merged-hf"
        try merge(["--model", base, "--adapter", peft, "--output", out, "--format", "safetensors", "--dtype", "f32"])

        let model = try BaseModel(loading: base, requiresTokenizer: false)
        try model.apply(AdapterSource.load(peft))
        let ids = IntTensor(shape: [1, 7], scalars: [1, 17, 42, 5, 88, 3, 60])
        let expected = noGrad { model.model.logits(ids: ids, positions: positions) }
        let merged = try DecoderModel(huggingFaceFolder: out)
        XCTAssertLessThanOrEqual(maxDifference(noGrad { merged.logits(ids: ids, positions: positions) }, expected), 1e-4)
        let baseOnly = try DecoderModel(huggingFaceFolder: base)
        XCTAssertGreaterThan(maxDifference(noGrad { baseOnly.logits(ids: ids, positions: positions) }, expected), 1e-3)
        let config = try JSONValue(contentsOf: out + "/config.json"), source = try JSONValue(contentsOf: base + "/config.json")
        XCTAssertEqual(config["rope_scaling"] ?? config["rope_parameters"], source["rope_scaling"] ?? source["rope_parameters"])
        XCTAssertEqual(config["dtype"]?.string, "float32")

        XCTAssertThrowsError(try merge(["--model", base, "--adapter", peft, "--output", directory + "/x.gguf", "--format", "gguf"])) { error in
            XCTAssertTrue("\(error)".contains("needs a GGUF base"), "\(error)")
        }
    }

    /// F16 and BF16 folders hold the F32 merge rounded to nearest even, tensor by tensor.
    func testHalfPrecisionFoldersHoldTheRoundedF32Merge() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        let reference = directory + "/merged-f32"
        try merge(["--model", base, "--adapter", checkpoint, "--output", reference, "--format", "safetensors", "--dtype", "f32"])
        let f32 = SafetensorsWeightSource(folder: try SafetensorsFolder(path: reference))
        let rounding: [(String, (Float) -> Float)] = [
            ("f16", { Float(Float16($0)) }),
            ("bf16", { Float(bitPattern: UInt32(HalfPrecision.bfloat16Bits($0)) << 16) }),
        ]
        for (dtype, round) in rounding {
            let out = directory + "/merged-" + dtype
            try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors", "--dtype", dtype])
            let folder = try SafetensorsFolder(path: out), half = SafetensorsWeightSource(folder: folder)
            XCTAssertEqual(try JSONValue(contentsOf: out + "/config.json")["dtype"]?.string, dtype == "f16" ? "float16" : "bfloat16")
            XCTAssertEqual(folder.tensorNames, try SafetensorsFolder(path: reference).tensorNames)
            for name in folder.tensorNames {
                let (_, entry) = try XCTUnwrap(folder.entry(name))
                XCTAssertEqual(entry.dtype.rawValue, dtype.uppercased(), name)
                let (stored, exact) = entry.shape.count == 1 ? (try half.vector(name), try f32.vector(name))
                    : (try half.matrix(name).decoded(), try f32.matrix(name).decoded())
                XCTAssertEqual(stored.scalars, exact.scalars.map(round), "\(dtype) \(name)")
            }
        }
    }

    /// bfloat16 rounds to nearest, ties to even, as torch's `.to(torch.bfloat16)` does.
    func testBFloat16Rounding() {
        XCTAssertEqual(HalfPrecision.bfloat16Bits(1), 0x3F80)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80, "a tie rounds to the even 0x3F80")
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82, "a tie rounds to the even 0x3F82")
        XCTAssertEqual(HalfPrecision.bfloat16Bits(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(-2.5), 0xC020)
        XCTAssertEqual(HalfPrecision.bfloat16Bits(.nan), 0x7FC0)
    }

    /// A Llama 3 GGUF keeps its RoPE scaling as `rope_freqs` divisors: the merged GGUF copies
    /// them, the merged folder's config.json gets the Llama 3 parameters that reproduce them,
    /// and both give the unmerged logits (which the scaling changes at these positions).
    func testRopeFreqsSurviveBothMergeFormats() throws {
        let (factor, low, high, original): (Float, Float, Float, Int) = (8, 1, 4, 64)
        var llama3 = Self.config
        llama3.ropeScaling = .llama3(factor: factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
        let divisors = zip(Self.config.rotaryEmbedding.inverseFrequencies, llama3.rotaryEmbedding.inverseFrequencies).map { $0 / $1 }
        XCTAssertTrue(divisors.contains { $0 > 1 && $0 < factor }, "some pair must fall between the bands")
        let checkpoint = try writeCheckpoint()
        let plain = try unmergedLogits(base: try writeBaseGGUF(), checkpoint: checkpoint, onto: .original)
        let base = try writeBaseGGUF(ropeFreqs: divisors)  // the same path, now with the divisors
        let expected = try unmergedLogits(base: base, checkpoint: checkpoint, onto: .original)
        XCTAssertGreaterThan(maxDifference(plain, expected), 1e-3, "the divisors must matter")

        let gguf = directory + "/merged.gguf", folder = directory + "/merged"
        try merge(["--model", base, "--adapter", checkpoint, "--output", gguf, "--format", "gguf", "--quant", "f32", "--onto", "original"])
        try merge(["--model", base, "--adapter", checkpoint, "--output", folder, "--format", "safetensors", "--dtype", "f32", "--onto", "original"])
        XCTAssertEqual(try GGUFFile(path: gguf).tensor("rope_freqs.weight")?.dimensions, [divisors.count])
        XCTAssertLessThanOrEqual(maxDifference(logits(try DecoderModel(ggufPath: gguf)), expected), 1e-4)
        XCTAssertLessThanOrEqual(maxDifference(logits(try DecoderModel(huggingFaceFolder: folder)), expected), 1e-4)
        let rope = try JSONValue(contentsOf: folder + "/config.json")["rope_parameters"]
        XCTAssertEqual(rope?["rope_type"]?.string, "llama3")
        XCTAssertEqual(rope?["original_max_position_embeddings"]?.int, original)
        XCTAssertEqual(rope?["factor"]?.double, Double(factor))
    }

    /// PiSSA and LoftQ checkpoints merge onto the source weights as their conversion for the
    /// original base (W + s·(B·A − B0·A0)), which export writes too; LoftQ's own base cannot be
    /// f32, so without the conversion it was refused. PiSSA onto the trained base keeps the
    /// residual it trained over.
    func testPiSSAAndLoftQCheckpointsMergeOntoTheSourceWeights() throws {
        let base = try writeBaseGGUF()
        for initialization in ["pissa", "loftq"] {
            let checkpoint = try writeCheckpoint(settings: ["lora.init=\(initialization)"])
            let converted = try PlainLoRAAdapter(checkpoint: Checkpoint(contentsOf: checkpoint), source: checkpoint,
                                                 originalBase: try DecoderModel(ggufPath: base))
            let model = try BaseModel(loading: base)
            try model.apply(.peft(converted, path: checkpoint))
            let expected = logits(model.model)
            for format in ["safetensors", "gguf"] {
                let out = directory + "/merged-\(initialization).\(format)"
                try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", format, "--dtype", "f32", "--quant", "f32",
                           "--onto", "original"])
                let merged = format == "gguf" ? try DecoderModel(ggufPath: out) : try DecoderModel(huggingFaceFolder: out)
                XCTAssertLessThanOrEqual(maxDifference(logits(merged), expected), 1e-4, "\(initialization) \(format)")
            }
            XCTAssertGreaterThan(maxDifference(logits(try DecoderModel(ggufPath: base)), expected), 1e-2, "the adapter must matter")
        }
    }

    func testGGUFGivesTheUnmergedLogitsAndKeepsMetadata() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        let out = directory + "/merged.gguf"
        try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "gguf", "--quant", "f32"])
        // Without --onto, onto the base the adapter was trained against (as generate and eval apply it).
        let expected = try unmergedLogits(base: base, checkpoint: checkpoint, onto: .trained)
        XCTAssertLessThanOrEqual(maxDifference(logits(try DecoderModel(ggufPath: out)), expected), 1e-4)
        let file = try GGUFFile(path: out), source = try GGUFFile(path: base)
        XCTAssertEqual(file.metadata["general.license"]?.string, "llama3.2")
        XCTAssertEqual(file.metadata["general.name"]?.string, "Tiny Base")
        XCTAssertEqual(file.metadata["tokenizer.chat_template"], source.metadata["tokenizer.chat_template"])
        XCTAssertEqual(file.metadata["tokenizer.ggml.merges"], source.metadata["tokenizer.ggml.merges"])
        XCTAssertEqual(file.tensors.map(\.name), source.tensors.map(\.name))

        // Quantized outputs: every matrix is the reference encoding of the F16-rounded merged
        // weight (in GGUF row order; llama.cpp quantizes the F16 merge), norms stay F32, the tied
        // token_embd follows llama.cpp's output rule (Q6_K, which 64 columns demote to Q8_0), and
        // general.file_type says which.
        for (quant, type, fileType) in [("q8_0", GGMLType.q8_0, 7), ("Q4_0", .q4_0, 2), ("f16", .f16, 1)] {
            let path = directory + "/merged-\(quant).gguf"
            try merge(["--model", base, "--adapter", checkpoint, "--output", path, "--format", "gguf", "--quant", quant, "--no-eval"])
            let quantized = try GGUFFile(path: path)
            XCTAssertEqual(quantized.metadata["general.file_type"]?.int, fileType)
            for info in quantized.tensors {
                let expected: GGMLType = info.dimensions.count == 1 ? .f32 : info.name == "token_embd.weight" && type == .q4_0 ? .q8_0 : type
                XCTAssertEqual(info.type, expected, info.name)
            }
            let name = "blk.1.attn_q.weight"
            let merged = GGUFMatrix(file: file, info: try XCTUnwrap(file.tensor(name))).decoded()
            let reference = Tensor(shape: merged.shape, scalars: merged.scalars.map { Float(Float16($0)) })
            let expectedBytes: [UInt8] = switch type {
            case .q8_0: Q8_0Matrix(quantizing: reference).blocks
            case .q4_0: Q4_0Matrix(quantizing: reference).blocks
            default: reference.scalars.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }
            }
            let info = try XCTUnwrap(quantized.tensor(name))
            XCTAssertEqual(Array(quantized.bytes(of: info)), expectedBytes, quant)
            XCTAssertNotNil(try? DecoderModel(ggufPath: path), quant)
        }
    }

    /// A quantized merge reports the loss of the base, of the adapter unmerged and of the file
    /// it wrote, each equal to what `eval` measures for that model on the same data.
    func testQuantizedMergeReportsBaseAdapterAndMergedLosses() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        let data = directory + "/eval.jsonl"
        let lines = ["the cat", "ab cd the", "in the er", "he ab in"].map { text in
            #"{"messages": [{"role": "user", "content": "\#(text)"}, {"role": "assistant", "content": "\#(text) the ab"}]}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        var request = MergeRequest(adapter: checkpoint, model: base, output: directory + "/m.gguf", format: .gguf)
        request.quant = .q4_0
        request.evalData = data
        let result = try request.run()
        let quality = try XCTUnwrap(result.quality, result.qualityUnavailable ?? "")
        let unmerged = try EvaluationRequest(model: base, adapter: checkpoint, data: data, compare: true).run()
        let merged = try EvaluationRequest(model: directory + "/m.gguf", data: data).run()
        XCTAssertEqual(quality.baseLoss, unmerged.runs[0].loss)
        XCTAssertEqual(quality.adapterLoss, unmerged.runs[1].loss)
        XCTAssertEqual(quality.mergedLoss, merged.runs[0].loss)
        XCTAssertNotEqual(quality.mergedLoss, quality.adapterLoss, "Q4_0 changes the weights, so the loss moves")
        XCTAssertEqual(quality.examples, 4)

        // Data that cannot be read makes no report but says why, and the file is still written.
        var noData = MergeRequest(adapter: checkpoint, model: base, output: directory + "/n.gguf", format: .gguf)
        noData.quant = .q8_0
        noData.evalData = directory + "/missing.jsonl"
        let written = try noData.run()
        XCTAssertNil(written.quality)
        XCTAssertTrue(written.qualityUnavailable?.contains("missing.jsonl") == true, written.qualityUnavailable ?? "nil")
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/n.gguf"))
    }

    /// The warning threshold: more than 25% of base − adapter lost by the merged file.
    func testMergeQualityWarnsWhenQuantizingErasesMoreThanAQuarterOfTheGain() {
        func q(_ merged: Double) -> MergeQuality {
            MergeQuality(baseLoss: 3.0, adapterLoss: 2.0, mergedLoss: merged, data: "d", examples: 1, trainedTokens: 1)
        }
        XCTAssertEqual(q(2.3).erasedShare ?? 0, 0.3, accuracy: 1e-12)
        XCTAssertTrue(q(2.3).erasesTooMuch)
        XCTAssertFalse(q(2.2).erasesTooMuch)
        XCTAssertFalse(q(1.9).erasesTooMuch)
        XCTAssertNil(MergeQuality(baseLoss: 2, adapterLoss: 2.5, mergedLoss: 2.6, data: "d", examples: 1, trainedTokens: 1).erasedShare)
    }

    func testExistingOutputIsRefusedUnlessForced() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        let out = directory + "/taken"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: out + "/old.txt"))
        let arguments = ["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors"]
        XCTAssertThrowsError(try merge(arguments)) { error in
            XCTAssertTrue("\(error)".contains("already exists") && "\(error)".contains("--force"), "\(error)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/old.txt"), "a refused merge must not touch the output")
        try merge(arguments + ["--force"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/old.txt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        XCTAssertEqual(try leftovers(), [], "no partial or replaced folders stay behind")

        let gguf = directory + "/taken.gguf"
        try Data("old".utf8).write(to: URL(fileURLWithPath: gguf))
        XCTAssertThrowsError(try merge(["--model", base, "--adapter", checkpoint, "--output", gguf, "--format", "gguf"]))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: gguf)), Data("old".utf8))
        try merge(["--model", base, "--adapter", checkpoint, "--output", gguf, "--format", "gguf", "--force"])
        XCTAssertNotNil(try? GGUFFile(path: gguf))
    }

    func testAdapterForAnotherBaseIsRefusedNamingTensorAndShapes() throws {
        let base = try writeBaseGGUF()
        let wrong = LoRAAdapter.pefName("model.layers.1.mlp.up_proj", "A")
        let checkpoint = try writeCheckpoint(wrongShape: wrong)
        let out = directory + "/never"
        XCTAssertThrowsError(try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", "safetensors"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(wrong) && text.contains("[4, 80]") && text.contains("[4, 64]"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try leftovers(), [])
    }

    /// A full disk (here: a file-size limit, which fails write(2) the same way) leaves neither
    /// the output nor a partial file or folder.
    func testAFailedWriteLeavesNothingUnderTheRealName() throws {
        let base = try writeBaseGGUF(), checkpoint = try writeCheckpoint()
        var old = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limit = old
        limit.rlim_cur = 100_000  // the F32 weights are ~260 KB
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
        defer {
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
            signal(SIGXFSZ, previousHandler)
        }
        for (format, out) in [("safetensors", directory + "/full"), ("gguf", directory + "/full.gguf")] {
            XCTAssertThrowsError(try merge(["--model", base, "--adapter", checkpoint, "--output", out, "--format", format, "--dtype", "f32", "--quant", "f32"])) { error in
                XCTAssertTrue("\(error)".contains("cannot write"), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), format)
        }
        XCTAssertEqual(try leftovers(), [])
    }

    /// A PEFT folder whose safetensors is cut short, or whose header is not JSON, is refused
    /// naming the file; nothing appears under the output's name.
    func testCorruptPEFTSafetensorsIsRefusedNamingTheFile() throws {
        let base = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ArchitecturesTests/Fixtures/llama").path
        let peft = directory + "/peft"
        try FileManager.default.createDirectory(atPath: peft, withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "bias": "none"}"#.utf8)
            .write(to: URL(fileURLWithPath: peft + "/adapter_config.json"))
        var tensors: [String: Tensor] = [:]
        for layer in 0..<2 {
            let name = WeightNames.layer(layer, "self_attn.q_proj")
            tensors[LoRAAdapter.pefName(name, "A")] = Fixtures.tensor([2, 32], seed: UInt64(2 * layer + 1), requiresGrad: false, scale: 0.3)
            tensors[LoRAAdapter.pefName(name, "B")] = Fixtures.tensor([32, 2], seed: UInt64(2 * layer + 2), requiresGrad: false, scale: 0.3)
        }
        try SafetensorsFile.write(tensors, to: peft + "/adapter_model.safetensors")
        let file = peft + "/adapter_model.safetensors"
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        try merge(["--model", base, "--adapter", peft, "--output", directory + "/fine", "--format", "safetensors"])  // the intact folder merges

        var garbledHeader = whole
        garbledHeader[9] = UInt8(ascii: "#")  // inside the JSON header, after its 8-byte length
        for (what, bytes) in [("cut short", whole.prefix(whole.count - 40)), ("garbled header", garbledHeader)] {
            try bytes.write(to: URL(fileURLWithPath: file))
            let out = directory + "/never-\(what.count)"
            XCTAssertThrowsError(try merge(["--model", base, "--adapter", peft, "--output", out, "--format", "safetensors"]), what) { error in
                XCTAssertTrue("\(error)".contains("adapter_model.safetensors"), "\(what): \(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), what)
        }
        XCTAssertEqual(try leftovers(), [])
    }

    /// Names in the test folder other than the inputs and finished outputs.
    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".partial-") || $0.contains(".replaced-") }
    }
}
