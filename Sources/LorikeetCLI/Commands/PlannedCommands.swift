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

