import ArgumentParser
import Foundation
import Formats
import Architectures
import TensorCore

/// What a model file holds: architecture, sizes, quantization, tokenizer, template, license.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a model holds: architecture, sizes, quantization, tokenizer, template and license.")

    @Argument(help: "A .gguf file, a Hugging Face folder, or 'smollm2' (the embedded default).") var model: String
    @Flag(help: "List every tensor with its shape, type and size.") var tensors = false
    @Flag(help: "Also load the model for inference and report the time and peak memory it took.") var load = false

    func run() throws {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(model) } catch { throw CLIError(error.description) }
        switch location {
        case .gguf(let path): try inspectGGUF(path)
        case .huggingFaceFolder(let path): try inspectFolder(path)
        }
        if load {
            let start = DispatchTime.now().uptimeNanoseconds
            do { _ = try location.load() } catch { throw CLIError(error.description) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let peak = ProcessMemory.peakResidentBytes.map(mib) ?? "n/a"
            row("load", String(format: "%.2f s, peak RSS %@ (weights stay memory-mapped and encoded)", seconds, peak))
        }
    }

    func inspectGGUF(_ path: String) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw CLIError(error.description) }
        let m = file.metadata
        row("file", "\(path) (GGUF v\(file.version), \(mib(file.fileSize)))")
        row("name", [m["general.name"]?.string, m["general.organization"]?.string.map { "by \($0)" }].compactMap { $0 }.joined(separator: " "))
        row("license", license(m["general.license"]?.string))
        do {
            let config = try ModelConfig(gguf: file)
            row("architecture", describe(config))
        } catch {
            row("architecture", "\(m["general.architecture"]?.string ?? "?") — \(error)")
        }
        let parameters = file.tensors.reduce(0) { $0 + $1.elementCount }
        row("parameters", String(format: "%.1fM in %d tensors%@", Double(parameters) / 1e6, file.tensors.count,
                                 file.tensor("output.weight") == nil ? " (output head tied to the embedding)" : ""))
        var mix: [String: (count: Int, bytes: Int)] = [:]
        for t in file.tensors { mix[t.type.name, default: (0, 0)].count += 1; mix[t.type.name]!.bytes += t.range.count }
        row("quantization", mix.sorted { $0.value.bytes > $1.value.bytes }
            .map { "\($0.key) ×\($0.value.count) (\(mib($0.value.bytes)))" }.joined(separator: ", "))
        let tokens = m["tokenizer.ggml.tokens"]?.array?.count ?? 0
        row("tokenizer", "\(m["tokenizer.ggml.model"]?.string ?? "none")\(m["tokenizer.ggml.pre"]?.string.map { " (pre-tokenizer \($0))" } ?? ""), \(tokens) tokens, bos \(m["tokenizer.ggml.bos_token_id"]?.int.map(String.init) ?? "-"), eos \(m["tokenizer.ggml.eos_token_id"]?.int.map(String.init) ?? "-")")
        row("chat template", m["tokenizer.chat_template"]?.string.map { "\($0.count) characters" } ?? "none")
        if tensors {
            print("")
            for t in file.tensors {
                print("  " + t.name.padding(toLength: 34, withPad: " ", startingAt: 0) + " "
                      + "\(t.shape)".padding(toLength: 14, withPad: " ", startingAt: 0) + " "
                      + t.type.name.padding(toLength: 6, withPad: " ", startingAt: 0) + " " + mib(t.range.count))
            }
        }
    }

    func inspectFolder(_ path: String) throws {
        let config: ModelConfig, folder: SafetensorsFolder
        do {
            folder = try SafetensorsFolder(path: path)
            config = try ModelConfig(huggingFace: JSONValue(contentsOf: path + "/config.json"), path: path + "/config.json")
        } catch let error as FormatError { throw CLIError(error.description) } catch let error as ModelError { throw CLIError(error.description) }
        row("folder", "\(path) (\(folder.files.count) safetensors file\(folder.files.count == 1 ? "" : "s"))")
        row("license", license(modelCardLicense(path)))
        row("architecture", describe(config))
        let entries = folder.tensorNames.compactMap { folder.entry($0)?.entry }
        let parameters = entries.reduce(0) { $0 + $1.elementCount }
        row("parameters", String(format: "%.1fM in %d tensors", Double(parameters) / 1e6, entries.count))
        var mix: [String: Int] = [:]
        for e in entries { mix[e.dtype.rawValue, default: 0] += e.range.count }
        row("dtypes", mix.sorted { $0.value > $1.value }.map { "\($0.key) (\(mib($0.value)))" }.joined(separator: ", "))
        let tokenizer = FileManager.default.fileExists(atPath: path + "/tokenizer.json") ? "tokenizer.json" : "none found"
        row("tokenizer", tokenizer)
        if tensors {
            print("")
            for e in entries {
                print("  " + e.name.padding(toLength: 52, withPad: " ", startingAt: 0) + " "
                      + "\(e.shape)".padding(toLength: 14, withPad: " ", startingAt: 0) + " " + e.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + " " + mib(e.range.count))
            }
        }
    }

    /// The `license:` line of a Hugging Face model card's front matter.
    func modelCardLicense(_ folder: String) -> String? {
        guard let card = try? String(contentsOfFile: folder + "/README.md", encoding: .utf8), card.hasPrefix("---") else { return nil }
        for line in card.split(separator: "\n").dropFirst().prefix(while: { $0 != "---" }) where line.hasPrefix("license:") {
            return line.dropFirst("license:".count).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    func license(_ value: String?) -> String {
        value ?? "not stated in the file — check the model's card before you fine-tune or share it"
    }

    func describe(_ c: ModelConfig) -> String {
        var parts = ["\(c.family.rawValue): \(c.layerCount) layers, hidden \(c.hiddenSize)",
                     "\(c.headCount) heads (\(c.kvHeadCount) key/value, head dim \(c.headDim))",
                     "MLP \(c.intermediateSize)", "vocab \(c.vocabSize)", "context \(c.maxPositions)",
                     String(format: "RoPE θ %g", c.ropeTheta)]
        if let w = c.slidingWindow, c.windowPattern != .none { parts.append("sliding window \(w)") }
        return (parts + variations(c)).joined(separator: ", ")
    }

    /// The named variations a config turns on, so a reader sees what sets this family apart.
    func variations(_ c: ModelConfig) -> [String] {
        var out: [String] = []
        switch c.ropeScaling {
        case nil: break
        case .linear(let factor): out.append(String(format: "RoPE linear scaling ×%g", factor))
        case .llama3(let factor, _, _, _): out.append(String(format: "Llama 3 RoPE scaling ×%g", factor))
        case .frequencyFactors(let factors): out.append("RoPE frequency factors (\(factors.count), rope_freqs)")
        }
        if c.partialRotaryFactor < 1 { out.append(String(format: "rotary on %g of each head", c.partialRotaryFactor)) }
        if c.attentionBias { out.append("QKV bias") }
        if c.qkNorm { out.append("QK-norm") }
        if c.fusedQKV { out.append("fused QKV") }
        if c.fusedGateUp { out.append("fused gate-up") }
        if c.activation == .geluTanh { out.append("GeGLU") }
        if c.normWeightOffset != 0 { out.append(String(format: "norms scale by %g+w", c.normWeightOffset)) }
        if c.scaleEmbeddings { out.append("scaled embeddings") }
        if c.sandwichNorms { out.append("post-attention/MLP norms") }
        if let cap = c.attentionSoftcap { out.append(String(format: "attention soft-cap %g", cap)) }
        if let cap = c.finalLogitSoftcap { out.append(String(format: "logit soft-cap %g", cap)) }
        return out
    }

    func row(_ label: String, _ value: String) {
        print(label.padding(toLength: 14, withPad: " ", startingAt: 0) + value)
    }

    func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}
