import Foundation
import Formats
import TensorCore
import XCTest

/// Bad input of every kind a stranger can hand `lorikeet` (files, recipes, flags, datasets,
/// templates, adapters), each run as a user runs it — a separate process — and each checked for
/// a non-zero exit, the words of its one-line message, and that nothing was written.
final class BadInputTableTests: XCTestCase {
    /// One bad input: files to create in a fresh folder (`$D` in arguments and contents is that
    /// folder), the arguments, words the output must contain, and outputs that must not appear.
    struct Case {
        var name: String
        var files: [String: Data] = [:]
        var arguments: [String]
        var words: [String]
        var mustNotExist: [String] = []
        /// 64 for usage errors caught while parsing, 1 for work that could not be done.
        var status: Int32 = 1
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let tiny = fixtures.appendingPathComponent("ArchitecturesTests/Fixtures/llama/model.gguf").path
    static let tinyFolder = fixtures.appendingPathComponent("ArchitecturesTests/Fixtures/llama").path
    static let peft = fixtures.appendingPathComponent("LorikeetCLITests/Fixtures/peft-trained").path

    static func text(_ s: String) -> Data { Data(s.utf8) }

    /// A small valid data folder and recipe over the tiny model, for cases that break one thing.
    static var goodData: [String: Data] {
        let line = #"{"text": "the adapter and the attention"}"#
        return ["data/train.jsonl": text(String(repeating: line + "\n", count: 8)),
                "data/valid.jsonl": text(line + "\n"),
                "r.yaml": text("model:\n  path: \(tiny)\ndata:\n  path: $D/data\n  max_seq_len: 16\ntraining:\n  steps: 1\n  batch_size: 2\noutput:\n  dir: $D/out\n")]
    }

    static func with(_ extra: [String: Data]) -> [String: Data] { goodData.merging(extra) { $1 } }

    /// The bytes of a small GGUF with `metadata` and F32 `tensors` (empty when it cannot be written).
    static func gguf(_ metadata: [(String, GGUFValue)], tensors: [String] = []) -> Data {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-badgguf-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let payloads = tensors.map { ($0, Tensor(shape: [2, 32], scalars: [Float](repeating: 0.5, count: 64))) }
        guard (try? GGUFFile.write(metadata: metadata, tensors: payloads, to: path)) != nil else { return Data() }
        return (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
    }

    /// Bad models a user may point Lorikeet at: an architecture it does not know, a vision
    /// projector (llama.cpp's mmproj), a Gemma 3 GGUF that holds its vision tower, a multimodal
    /// Hugging Face config, a folder without tokenizer files.
    static var badModelCases: [Case] {
        let sizes: [(String, GGUFValue)] = [("gemma3.block_count", .uint32(2)), ("gemma3.embedding_length", .uint32(32)),
                                            ("gemma3.attention.head_count", .uint32(4)), ("gemma3.feed_forward_length", .uint32(48))]
        let mamba = gguf([("general.architecture", .string("mamba")), ("mamba.block_count", .uint32(2))], tensors: ["token_embd.weight"])
        let mmproj = gguf([("general.architecture", .string("clip")), ("clip.has_vision_encoder", .bool(true)),
                           ("clip.projector_type", .string("gemma3"))], tensors: ["v.patch_embd.weight", "mm.input_projection.weight"])
        let vision = gguf([("general.architecture", .string("gemma3"))] + sizes, tensors: ["token_embd.weight", "v.blk.0.attn_q.weight"])
        let multimodalConfig = text(#"{"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"model_type": "gemma3_text"}, "vision_config": {"model_type": "siglip_vision_model"}}"#)
        return [
            Case(name: "unknown architecture", files: with(["x.gguf": mamba]), arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/x.gguf"],
                 words: ["unsupported architecture 'mamba'", "gemma3"], mustNotExist: ["out"]),
            Case(name: "unknown architecture (generate)", files: ["x.gguf": mamba], arguments: ["generate", "--model", "$D/x.gguf", "--raw", "--prompt", "hi"],
                 words: ["unsupported architecture 'mamba'"]),
            Case(name: "vision projector (mmproj) GGUF", files: with(["mmproj.gguf": mmproj]), arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/mmproj.gguf"],
                 words: ["$D/mmproj.gguf", "vision projector (mmproj) (gemma3)", "text model's GGUF"], mustNotExist: ["out"]),
            Case(name: "Gemma 3 GGUF with its vision tower", files: ["g.gguf": vision], arguments: ["generate", "--model", "$D/g.gguf", "--raw", "--prompt", "hi"],
                 words: ["$D/g.gguf", "multimodal gemma3 GGUF", "v.blk.0.attn_q.weight"]),
            Case(name: "multimodal Hugging Face config", files: with(["mm/config.json": multimodalConfig]), arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/mm"],
                 words: ["$D/mm/config.json", "multimodal"], mustNotExist: ["out"]),
            Case(name: "generate from a HF folder without tokenizer files", arguments: ["generate", "--model", tinyFolder, "--raw", "--prompt", "hi"],
                 words: ["no tokenizer.json"]),
            Case(name: "eval on a HF folder without tokenizer files", files: goodData, arguments: ["eval", "--model", tinyFolder, "--data", "$D/data/valid.jsonl"],
                 words: ["no tokenizer.json"]),
        ]
    }

    static var cases: [Case] {
        let gguf = try? Data(contentsOf: URL(fileURLWithPath: tiny))
        return [
            // train: recipes and flags
            Case(name: "missing recipe", arguments: ["train", "$D/none.yaml"], words: ["$D/none.yaml", "cannot read the recipe"]),
            Case(name: "malformed YAML", files: ["r.yaml": text("model: [unclosed\n")], arguments: ["train", "$D/r.yaml"], words: ["$D/r.yaml"]),
            Case(name: "unknown recipe key", files: with(["r.yaml": text("lora:\n  rnak: 8\n")]), arguments: ["train", "$D/r.yaml"],
                 words: ["unknown recipe key 'lora.rnak'", "Did you mean 'lora.rank'"]),
            Case(name: "value out of range", files: with(["r.yaml": text("lora:\n  rank: 0\n")]), arguments: ["train", "$D/r.yaml"],
                 words: ["'lora.rank'", "≥ 1"]),
            Case(name: "wrong kind of value", files: goodData, arguments: ["train", "$D/r.yaml", "--set", "training.batch_size=four"],
                 words: ["'training.batch_size'", "four", "integer"], mustNotExist: ["out"]),
            Case(name: "YAML custom tag", files: with(["r.yaml": text("model:\n  path: !!python/object:os.system x\n")]), arguments: ["train", "$D/r.yaml"],
                 words: ["tag", "not allowed"]),
            Case(name: "--set without '='", files: goodData, arguments: ["train", "$D/r.yaml", "--set", "training.steps"],
                 words: ["--set training.steps", "section.key=value"], mustNotExist: ["out"]),
            Case(name: "missing data folder", files: with(["r.yaml": text("model:\n  path: \(tiny)\ndata:\n  path: $D/nodata\noutput:\n  dir: $D/out\n")]),
                 arguments: ["train", "$D/r.yaml"], words: ["$D/nodata", "no such file or folder"], mustNotExist: ["out"]),
            Case(name: "malformed JSONL line", files: with(["data/train.jsonl": text(#"{"text": "the adapter"}"# + "\n" + #"{"text": "broken"# + "\n")]),
                 arguments: ["train", "$D/r.yaml"], words: ["train.jsonl:2"], mustNotExist: ["out"]),
            Case(name: "record of no known format", files: with(["data/train.jsonl": text(#"{"question": "x", "answer": "y"}"# + "\n")]),
                 arguments: ["train", "$D/r.yaml"], words: ["train.jsonl:1"], mustNotExist: ["out"]),
            Case(name: "JSONL that is not UTF-8", files: with(["data/train.jsonl": Data([0x7B, 0x22, 0x74, 0xFF, 0xFE, 0x22, 0x7D, 0x0A])]),
                 arguments: ["train", "$D/r.yaml"], words: ["train.jsonl"], mustNotExist: ["out"]),
            Case(name: "missing model", files: goodData, arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/none.gguf"],
                 words: ["$D/none.gguf", "no such file or folder"], mustNotExist: ["out"]),
            Case(name: "pickled PyTorch model", files: goodData.merging(["model.bin": text("not really a pickle")]) { $1 },
                 arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/model.bin"], words: ["pickled", "safetensors"], mustNotExist: ["out"]),
            Case(name: "not a GGUF file", files: goodData.merging(["fake.gguf": text("hello, not a model")]) { $1 },
                 arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/fake.gguf"], words: ["$D/fake.gguf", "GGUF"], mustNotExist: ["out"]),
            Case(name: "truncated GGUF", files: goodData.merging(["cut.gguf": gguf.map { Data($0.prefix($0.count / 2)) } ?? Data()]) { $1 },
                 arguments: ["train", "$D/r.yaml", "--set", "model.path=$D/cut.gguf"], words: ["$D/cut.gguf"], mustNotExist: ["out"]),
            Case(name: "targets matching nothing", files: goodData, arguments: ["train", "$D/r.yaml", "--set", "lora.targets=[no_such_proj]"],
                 words: ["lora.targets matches no module"], mustNotExist: ["out"]),
            Case(name: "resume without a checkpoint", files: goodData, arguments: ["train", "$D/r.yaml", "--resume", "latest", "--output", "$D/run"],
                 words: ["$D/run", "no checkpoint to resume from"], mustNotExist: ["run"]),
            Case(name: "resume from a file that is not a checkpoint", files: goodData.merging(["fake.h5": text("plain text")]) { $1 },
                 arguments: ["train", "$D/r.yaml", "--resume", "$D/fake.h5"], words: ["$D/fake.h5", "cannot read the checkpoint"], mustNotExist: ["out"]),
            Case(name: "HF folder without tokenizer files", files: goodData, arguments: ["train", "$D/r.yaml", "--set", "model.path=\(tinyFolder)"],
                 words: ["no tokenizer.json"], mustNotExist: ["out"]),
            // eval
            Case(name: "eval without data or adapter", arguments: ["eval"], words: ["--data"], status: 64),
            Case(name: "eval of a missing file", arguments: ["eval", "--model", tiny, "--data", "$D/none.jsonl"], words: ["$D/none.jsonl"]),
            Case(name: "eval with a missing adapter", files: goodData, arguments: ["eval", "--model", tiny, "--adapter", "$D/none.h5", "--data", "$D/data/valid.jsonl"],
                 words: ["$D/none.h5", "no such adapter"]),
            Case(name: "eval with a corrupt checkpoint", files: goodData.merging(["bad.h5": Data((0..<4096).map { UInt8($0 % 251) })]) { $1 },
                 arguments: ["eval", "--model", tiny, "--adapter", "$D/bad.h5", "--data", "$D/data/valid.jsonl"], words: ["$D/bad.h5"]),
            Case(name: "eval report of unknown kind", arguments: ["eval", "--data", "x.jsonl", "--report", "$D/r.txt"], words: [".json", ".md"], status: 64),
            Case(name: "eval --compare without adapter", files: goodData, arguments: ["eval", "--model", tiny, "--data", "$D/data/valid.jsonl", "--compare"],
                 words: ["comparing needs an adapter"]),
            Case(name: "eval --generate without a template", files: goodData,
                 arguments: ["eval", "--model", tiny, "--data", "$D/data/valid.jsonl", "--generate", "--report", "$D/r.json"],
                 words: ["no chat template"], mustNotExist: ["r.json"]),
            Case(name: "eval --base of unknown encoding", arguments: ["eval", "--model", tiny, "--data", "x.jsonl", "--base", "nf5"], words: ["nf5"], status: 64),
            // generate
            Case(name: "generate with --prompt and --chat", arguments: ["generate", "--prompt", "hi", "--chat"], words: ["either --prompt"], status: 64),
            Case(name: "generate with negative temperature", arguments: ["generate", "--prompt", "hi", "--temperature", "-1"], words: ["temperature"], status: 64),
            Case(name: "generate with a PEFT folder missing its config", files: ["peft/adapter_model.safetensors": text("x")],
                 arguments: ["generate", "--model", tiny, "--adapter", "$D/peft", "--prompt", "hi", "--no-template"], words: ["adapter_config.json"]),
            Case(name: "generate with a DoRA adapter", files: ["peft/adapter_config.json": text(#"{"peft_type": "LORA", "r": 4, "use_dora": true, "target_modules": ["q_proj"]}"#),
                                                          "peft/adapter_model.safetensors": text("x")],
                 arguments: ["generate", "--model", tiny, "--adapter", "$D/peft", "--prompt", "hi", "--no-template"], words: ["DoRA"]),
            Case(name: "generate through a template the model lacks", arguments: ["generate", "--model", tiny, "--prompt", "hi"], words: ["no chat template"]),
            // merge
            Case(name: "merge over an existing output", files: ["merged.gguf": text("keep me")],
                 arguments: ["merge", "--model", tiny, "--adapter", peft, "--output", "$D/merged.gguf", "--format", "gguf"],
                 words: ["already exists", "--force"]),
            Case(name: "merge to GGUF from a Hugging Face base", arguments: ["merge", "--model", tinyFolder, "--adapter", peft, "--output", "$D/m.gguf", "--format", "gguf"],
                 words: ["GGUF base"], mustNotExist: ["m.gguf"]),
            Case(name: "merge with an unknown --quant", arguments: ["merge", "--adapter", peft, "--output", "$D/m.gguf", "--format", "gguf", "--quant", "q3_x"],
                 words: ["q3_x"], mustNotExist: ["m.gguf"], status: 64),
            Case(name: "merge of an adapter for another base", arguments: ["merge", "--model", "smollm2", "--adapter", peft, "--output", "$D/m", "--format", "safetensors"],
                 words: ["lora_A"], mustNotExist: ["m"]),
            // export
            Case(name: "export to an unknown format", arguments: ["export", "--adapter", peft, "--format", "onnx", "--output", "$D/x"], words: ["onnx"], mustNotExist: ["x"], status: 64),
            Case(name: "export of a missing checkpoint", arguments: ["export", "--adapter", "$D/none.h5", "--format", "peft", "--output", "$D/x"],
                 words: ["$D/none.h5"], mustNotExist: ["x"]),
            Case(name: "LoRA GGUF for a Hugging Face base", arguments: ["export", "--adapter", peft, "--format", "gguf", "--model", tinyFolder, "--output", "$D/x.gguf"],
                 words: ["GGUF base"], mustNotExist: ["x.gguf"]),
            // inspect, tokenize, template, data, plot
            Case(name: "inspect a missing path", arguments: ["inspect", "$D/none.gguf"], words: ["$D/none.gguf", "no such file"]),
            Case(name: "inspect an HDF5 file that is not a checkpoint", files: ["x.h5": text("not hdf5")], arguments: ["inspect", "$D/x.h5"], words: ["$D/x.h5"]),
            Case(name: "tokenize with a folder lacking tokenizer.json", arguments: ["tokenize", "--model", tinyFolder, "hello"], words: ["no tokenizer.json"]),
            Case(name: "template with malformed messages", files: ["m.json": text(#"[{"role": "user", "content": "hi"}"#)],
                 arguments: ["template", "--messages", "$D/m.json"], words: ["$D/m.json", "line 1"]),
            Case(name: "template with a missing messages file", arguments: ["template", "--messages", "$D/none.json"], words: ["$D/none.json"]),
            Case(name: "template of a model without one", files: ["m.json": text(#"[{"role": "user", "content": "hi"}]"#)],
                 arguments: ["template", "--model", tiny, "--messages", "$D/m.json"], words: ["no chat template"]),
            Case(name: "data preview without data", arguments: ["data", "preview"], words: ["--recipe", "--data"]),
            Case(name: "plot of a file that is not a checkpoint", files: ["x.h5": text("nope")], arguments: ["plot", "$D/x.h5"], words: ["$D/x.h5"], mustNotExist: ["x.svg"]),
            Case(name: "mistyped command", arguments: ["trian", "r.yaml"], words: ["unknown command 'trian'", "Did you mean 'train'"], status: 64),
        ] + badModelCases
    }

    func testEveryBadInputFailsClearlyAndWritesNothing() throws {
        let cases = Self.cases
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        for c in cases {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-bad-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for (name, data) in c.files {
                let path = dir + "/" + name
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                let contents = String(data: data, encoding: .utf8).map { Data($0.replacingOccurrences(of: "$D", with: dir).utf8) } ?? data
                XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: contents), path)
            }
            let before = Set(try FileManager.default.subpathsOfDirectory(atPath: dir))
            let (status, output) = try DataPreviewCommandTests.run(c.arguments.map { $0.replacingOccurrences(of: "$D", with: dir) }, cache: dir + "/.cache")
            XCTAssertEqual(status, c.status, "\(c.name): exit status; output: \(output)")
            XCTAssertFalse(output.contains("Fatal error") || output.contains("Stack dump"), "\(c.name) crashed: \(output)")
            for word in c.words.map({ $0.replacingOccurrences(of: "$D", with: dir) }) {
                XCTAssertTrue(output.contains(word), "\(c.name): '\(word)' missing from: \(output)")
            }
            for path in c.mustNotExist {
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/" + path), "\(c.name): \(path) was written")
            }
            let after = Set(try FileManager.default.subpathsOfDirectory(atPath: dir)).filter { !$0.hasPrefix(".cache") }
            XCTAssertEqual(after.subtracting(before), [], "\(c.name): wrote files")
        }
    }
}
