import ArgumentParser
import Foundation
import TensorCore
import Training

/// The `lorikeet` command line: the only place that wires the modules together.
@main
struct LorikeetCommand: ParsableCommand {
    static let version = "0.1.0-dev"

    static let configuration = CommandConfiguration(
        commandName: "lorikeet",
        abstract: "LoRA/QLoRA fine-tuning of open-weight language models on your own machine (CPU).",
        discussion: """
        Train low-rank adapters over a frozen 4-bit base model, evaluate, merge and export them
        for llama.cpp, Ollama and Hugging Face, and sample from the result.
        """,
        version: version,
        subcommands: [
            TrainCommand.self, EvalCommand.self, GenerateCommand.self, MergeCommand.self, ExportCommand.self,
            InspectCommand.self, TokenizeCommand.self, TemplateCommand.self, DataCommand.self, PlotCommand.self, LogitsCommand.self, ServeCommand.self,
            BenchCommand.self,
        ]
    )

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let unknown = UnknownCommand.check(arguments, known: configuration.subcommands.map { $0._commandName }) {
            FileHandle.standardError.write(Data((unknown + "\n").utf8))
            Foundation.exit(64)  // EX_USAGE
        }
        Parallel.configureBLAS()
        // A file-size limit then fails write(2) with EFBIG, as a full disk fails it with ENOSPC:
        // an error the command reports, instead of a signal that kills it mid-write.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// "Did you mean …?" for a mistyped subcommand, before ArgumentParser's generic message.
enum UnknownCommand {
    static func check(_ arguments: [String], known: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-"), first != "help", !known.contains(first) else { return nil }
        let ranked = known.map { ($0, editDistance($0, first)) }.sorted { $0.1 < $1.1 }
        var message = "error: unknown command '\(first)'."
        if let best = ranked.first, best.1 <= max(2, first.count / 3) { message += " Did you mean '\(best.0)'?" }
        message += "\nCommands: \(known.joined(separator: ", ")). See 'lorikeet --help'."
        return message
    }

    static func editDistance(_ a: String, _ b: String) -> Int { RecipeDocument.editDistance(a, b) }
}
