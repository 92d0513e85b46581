import Datasets
import Formats
import Foundation
import Lorikeet
import Tokenization
import Training

/// One parser of untrusted input, fed arbitrary bytes. Every error is an expected outcome; a
/// crash, a sanitizer report or a hang is a bug. Parsers that read files get the bytes through
/// a per-process scratch file.
enum Harness: String, CaseIterable {
    case gguf, safetensors, jsonl, jinja, recipe, set, tokenizerJSON = "tokenizer-json", checkpoint, hfFolder = "hf-folder"

    /// Where file-reading parsers find the input (one file per process, rewritten each run): in
    /// memory (`/dev/shm`) where there is one, since the fuzzer writes it thousands of times a second.
    static let scratch = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path)
        + "/lorikeet-fuzz-\(getpid())"

    func run(_ bytes: [UInt8]) {
        switch self {
        case .gguf:
            write(bytes, to: Self.scratch + ".gguf")
            if let file = try? GGUFFile(path: Self.scratch + ".gguf") {
                _ = try? makeTokenizer(gguf: file).encode("Hello, world 123", addBOS: true, parseSpecial: true)
            }
        case .safetensors:
            write(bytes, to: Self.scratch + ".safetensors")
            _ = (try? SafetensorsFile(path: Self.scratch + ".safetensors"))?.tensors()
        case .jsonl:
            _ = try? JSONLFile(path: "fuzz.jsonl", bytes: Data(bytes))
        case .jinja:
            guard let source = String(validating: bytes, as: UTF8.self), let template = try? ChatTemplate(source: source) else { return }
            let messages: [JinjaValue] = [
                .dictionary([("role", .string("system")), ("content", .string("Be brief."))]),
                .dictionary([("role", .string("user")), ("content", .string("Hi <|im_start|>"))]),
            ]
            _ = try? template.render(messages: messages, addGenerationPrompt: true)
        case .recipe:
            guard let text = String(validating: bytes, as: UTF8.self) else { return }
            _ = try? Recipe(yaml: text, source: "fuzz.yaml")
        case .set:
            guard let text = String(validating: bytes, as: UTF8.self) else { return }
            var document = RecipeDocument()
            for line in text.split(separator: "\n") { try? document.override(String(line)) }
            _ = try? Recipe(document)
        case .tokenizerJSON:
            write(bytes, to: Self.scratch + ".json")
            _ = try? makeTokenizer(tokenizerJSON: Self.scratch + ".json").encode("Hello, world 123 ▁x <s>", addBOS: true, parseSpecial: true)
        case .checkpoint:
            write(bytes, to: Self.scratch + ".h5")
            _ = try? Checkpoint(contentsOf: Self.scratch + ".h5")
        case .hfFolder:
            let folder = Self.scratch + "-hf"
            mkdir(folder, 0o700)
            let sections = Self.sections(bytes)
            for (index, name) in Self.folderFiles.enumerated() {
                // An absent or empty section is an absent file.
                if index < sections.count, !sections[index].isEmpty { write(sections[index], to: folder + "/" + name) } else { unlink(folder + "/" + name) }
            }
            guard let model = try? BaseModel(loading: folder, requiresTokenizer: false) else { return }
            _ = try? model.tokenizer.encode("Hello, world 123 ▁x <s>", addBOS: true, parseSpecial: true)
            _ = try? model.chatTemplate?.render(messages: [.dictionary([("role", .string("user")), ("content", .string("Hi"))])],
                                                addGenerationPrompt: true)
        }
    }

    /// The files of the `hf-folder` harness's folder, in the order of an input's sections.
    static let folderFiles = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "README.md"]

    /// What separates the sections of an `hf-folder` input (ASCII record separator between newlines).
    static let sectionSeparator: [UInt8] = [0x0A, 0x1E, 0x0A]

    /// An `hf-folder` input cut into the files of a folder: section i is `folderFiles[i]`, the last
    /// one takes the rest. The scan is libc's `memchr` for the separator's middle byte, outside the
    /// fuzzer's instrumentation: a byte loop here cost more than the loader it feeds.
    static func sections(_ bytes: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        bytes.withUnsafeBufferPointer { input in
            guard let base = input.baseAddress else { parts.append([]); return }
            var start = 0, from = 1
            while parts.count < folderFiles.count - 1, from < input.count - 1,
                  let found = memchr(base + from, 0x1E, input.count - 1 - from) {
                let middle = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                if input[middle - 1] == 0x0A, input[middle + 1] == 0x0A, middle - 1 >= start {
                    parts.append(Array(input[start..<(middle - 1)]))
                    start = middle + 2
                    from = start + 1
                } else {
                    from = middle + 1
                }
            }
            parts.append(Array(input[min(start, input.count)...]))
        }
        return parts
    }

    /// Replaces the file's contents; no fsync (FileManager's writes sync, which cost more than
    /// most parsers under test).
    func write(_ bytes: [UInt8], to path: String) {
        guard let file = fopen(path, "wb") else { return }
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
}

/// A small valid checkpoint (the default recipe's rank 16, one adapted module, metrics) to seed
/// the checkpoint harness: `*.h5` files are not committed. `LorikeetFuzz seed-checkpoint PATH`
/// writes it, in either build.
func seedCheckpoint() -> Checkpoint {
    let module = "base_model.model.model.layers.0.self_attn.q_proj"
    var metrics = TrainingMetrics()
    metrics.steps = [1, 2]
    metrics.losses = [2.5, 2.25]
    metrics.learningRates = [1e-4, 2e-4]
    metrics.tokensPerSecond = [100, 110]
    return Checkpoint(recipe: Recipe(), base: BaseIdentity(name: "seed", path: "/m.gguf", sha256: "", license: "apache-2.0"),
                      adapter: [module + ".lora_A.weight": StoredTensor(shape: [16, 8], values: (0..<128).map { Float($0) / 128 }),
                                module + ".lora_B.weight": StoredTensor(shape: [8, 16], values: [Float](repeating: 0, count: 128))],
                      state: nil, metrics: metrics)
}

func writeSeedCheckpoint(to path: String) -> Never {
    do { try seedCheckpoint().write(to: path) } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        exit(1)
    }
    exit(0)
}

#if LORIKEET_FUZZ
/// libFuzzer's entry point; the harness comes from `LORIKEET_FUZZ_HARNESS` (scripts/fuzz.sh).
nonisolated(unsafe) var selected: Harness?

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<target>_main`; here it hands over to libFuzzer.
@_cdecl("LorikeetFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if argc == 3, let verb = argv?[1].map({ String(cString: $0) }), verb == "seed-checkpoint", let path = argv?[2] {
        writeSeedCheckpoint(to: String(cString: path))
    }
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if selected == nil {
        guard let name = ProcessInfo.processInfo.environment["LORIKEET_FUZZ_HARNESS"], let harness = Harness(rawValue: name) else {
            // A usage mistake, not a finding: exit plainly so libFuzzer records no crash input.
            let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("LorikeetFuzz: set LORIKEET_FUZZ_HARNESS to one of: \(names)\n".utf8))
            exit(2)
        }
        selected = harness
    }
    selected?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#else
/// Without the fuzzer: `LorikeetFuzz HARNESS FILE…` runs each file through a harness once (the
/// regression check for inputs the fuzzer found, and a smoke test of the harnesses).
@main
struct Replay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "seed-checkpoint", let path = arguments.dropFirst().first { writeSeedCheckpoint(to: path) }
        guard let name = arguments.first, let harness = Harness(rawValue: name) else {
            FileHandle.standardError.write(Data("usage: LorikeetFuzz \(Harness.allCases.map(\.rawValue).joined(separator: "|")) FILE…\n".utf8))
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("\(path): cannot read\n".utf8))
                exit(1)
            }
            harness.run([UInt8](data))
            count += 1
        }
        print("\(harness.rawValue): \(count) inputs, no crash")
    }
}
#endif
