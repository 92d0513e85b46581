import ArgumentParser

/// Subcommands whose implementation lands with later issues. Each one is listed in `--help`
/// so the shape of the tool is visible, and running it fails clearly (exit 2) instead of
/// pretending to work.
protocol PlannedCommand: ParsableCommand {
    static var plannedIn: String { get }
}

extension PlannedCommand {
    func run() throws {
        throw CLIError("'lorikeet \(Self._commandName)' is not available in this build yet (\(Self.plannedIn)).")
    }
}

struct TrainCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Fine-tune a LoRA/QLoRA adapter from a YAML recipe.")
    static let plannedIn = "QLoRA training issue"
    @Argument(help: "Recipe file (YAML).") var recipe: String?
}

struct EvalCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Validation loss and perplexity of a model, with or without an adapter.")
    static let plannedIn = "QLoRA training issue"
}

struct MergeCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "merge", abstract: "Merge an adapter into its base model (safetensors folder or GGUF).")
    static let plannedIn = "merge/export issue"
}

struct ExportCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export an adapter as a PEFT adapter or a llama.cpp GGUF LoRA.")
    static let plannedIn = "merge/export issue"
}

struct DataCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Preview a dataset as the model will see it, with statistics.")
    static let plannedIn = "dataset pipeline issue"
}

struct PlotCommand: PlannedCommand {
    static let configuration = CommandConfiguration(commandName: "plot", abstract: "Write an SVG of a checkpoint's loss curves.")
    static let plannedIn = "QLoRA training issue"
}
