import ArgumentParser
import Foundation
import Lorikeet

/// What a model file or a checkpoint holds: architecture, sizes, quantization, tokenizer,
/// template, license; for a checkpoint, its base, recipe, step and metrics.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a model or checkpoint holds: architecture, sizes, quantization, tokenizer, template and license.")

    @Argument(help: "A .gguf file, a Hugging Face folder, a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b), or a checkpoint (.h5).") var model: String
    @Flag(help: "List every tensor with its shape, type and size.") var tensors = false
    @Flag(help: "Also load the model for inference and report the time and peak memory it took.") var load = false

    func run() throws {
        if model.hasSuffix(".h5") { return try inspectCheckpoint() }
        let s = try ModelSummary(inspecting: model)
        switch s.container {
        case .gguf(let version): row("file", "\(s.path) (GGUF v\(version), \(mib(s.bytes)))")
        case .huggingFaceFolder(let files): row("folder", "\(s.path) (\(files) safetensors file\(files == 1 ? "" : "s"), \(mib(s.bytes)))")
        }
        if case .gguf = s.container {
            row("name", [s.name, s.organization.map { "by \($0)" }].compactMap { $0 }.joined(separator: " "))
        }
        row("license", s.licenseTerms.line)
        switch s.config {
        case .success(let config): row("architecture", config.summary)
        case .failure(let error): row("architecture", "\(s.declaredArchitecture ?? "?") — \(error)")
        }
        if case .gguf = s.container {
            row("parameters", String(format: "%.1fM in %d tensors%@", Double(s.parameters) / 1e6, s.tensors.count,
                                     s.tiedHead ? " (output head tied to the embedding)" : ""))
            row("quantization", s.encodings.map { "\($0.encoding) ×\($0.tensors) (\(mib($0.bytes)))" }.joined(separator: ", "))
        } else {
            row("parameters", String(format: "%.1fM in %d tensors", Double(s.parameters) / 1e6, s.tensors.count))
            row("dtypes", s.encodings.map { "\($0.encoding) (\(mib($0.bytes)))" }.joined(separator: ", "))
        }
        row("tokenizer", s.tokenizer)
        row("chat template", s.chatTemplateCharacters.map { "\($0) characters" + (s.chatTemplateIsBuiltIn ? " (none in the file: Lorikeet's built-in turn template for it)" : "") } ?? "none")
        if tensors {
            print("")
            let width = max(34, (s.tensors.map(\.name.count).max() ?? 0) + 1)
            for t in s.tensors {
                print("  " + t.name.padding(toLength: width, withPad: " ", startingAt: 0) + " "
                      + "\(t.shape)".padding(toLength: 14, withPad: " ", startingAt: 0) + " "
                      + t.encoding.padding(toLength: 6, withPad: " ", startingAt: 0) + " " + mib(t.bytes))
            }
        }
        if load {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try BaseModel(loading: model, requiresTokenizer: false)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let peak = ProcessMemory.peakResidentBytes.map(mib) ?? "n/a"
            row("load", String(format: "%.2f s, peak RSS %@ (weights stay memory-mapped and encoded)", seconds, peak))
        }
    }

    func inspectCheckpoint() throws {
        let c: Checkpoint
        do { c = try Checkpoint(contentsOf: model) } catch { throw CLIError(error.description) }
        row("checkpoint", model)
        row("base", "\(c.base.name) from \(c.base.path) (SHA-256 \(c.base.sha256.prefix(16))…)")
        row("license", ModelLicense.identify(c.base.license).line)
        row("lora", "r=\(c.recipe.lora.rank) alpha=\(Float(c.recipe.lora.alpha)) over a \(c.recipe.base.rawValue) base, \(c.adapter.count / 2) modules, \(c.adapter.values.reduce(0) { $0 + $1.values.count }) parameters")
        if let state = c.state {
            row("step", "\(state.step) (data epoch \(state.dataCursor.epoch), batch \(state.dataCursor.index))")
            row("best val", state.bestValidationLoss.map { String(format: "%.4f", $0) } ?? "-")
        } else {
            row("step", "adapter only (no training state)")
        }
        if let last = c.metrics.losses.last {
            row("train loss", String(format: "%.4f at step %d", last, c.metrics.steps.last ?? 0))
        }
        if !c.metrics.validationLosses.isEmpty {
            row("val loss", zip(c.metrics.validationSteps, c.metrics.validationLosses).map { String(format: "%d: %.4f", $0, $1) }.joined(separator: ", "))
        }
        print("recipe:")
        print(c.recipe.yaml.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
    }

    func row(_ label: String, _ value: String) {
        print(label.padding(toLength: 14, withPad: " ", startingAt: 0) + value)
    }

    func mib(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}
