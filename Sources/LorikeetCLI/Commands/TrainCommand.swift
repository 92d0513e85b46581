import ArgumentParser
import Foundation
import Lorikeet

/// Set by SIGINT or SIGTERM: the run saves at the end of the current step and stops.
nonisolated(unsafe) private var interrupted: sig_atomic_t = 0

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Fine-tune a LoRA/QLoRA adapter from a YAML recipe.",
        discussion: """
        Example: lorikeet train recipes/smollm2-foldoc.yaml --set training.steps=150
        Checkpoints go to <output.dir>/<run name>/step-NNNNNN.h5 (and best.h5); Ctrl-C (or SIGTERM) saves one and stops.
        Data-parallel: mpirun -np N lorikeet train RECIPE (Open MPI). The global batch stays the recipe's \
        (batch_size × grad_accumulation rows); each rank computes its share and rank 0 logs and saves.
        """)

    @Argument(help: "Recipe file (YAML); every key has a default.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe key: section.key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Resume from a checkpoint file, or 'latest' for the newest in the run folder.") var resume: String?
    @Option(help: "Run folder (default: <output.dir>/<recipe name>).") var output: String?
    @Flag(help: "Count and report bad records instead of stopping at the first (recipe key data.skip_invalid).") var skipInvalid = false

    /// `--set` assignments, then the flags that stand for recipe keys.
    var assignments: [String] { overrides + (skipInvalid ? ["data.skip_invalid=true"] : []) }

    func run() throws {
        // Under mpirun: only rank 0 talks (besides errors, which name their rank).
        let mpiRank = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"]
        let leader = mpiRank.map { $0 == "0" } ?? true
        MPIReducer.onTimeout = { message in note("error: " + message) }
        do { try train(leader: leader) } catch {
            guard let mpiRank, !(error is ExitCode) else { throw error }
            throw CLIError("rank \(mpiRank): \(error)")
        }
    }

    func train(leader: Bool) throws {
        // Rank 0 of an mpirun job speaks for all (the others would repeat it word for word).
        func say(_ text: String) { if leader { note(text) } }
        func show(_ text: String) { if leader { print(text) } }
        let settings = try Recipe.load(file: recipe, overrides: assignments)
        let runName = settings.output.name.isEmpty ? ((recipe as NSString).lastPathComponent as NSString).deletingPathExtension : settings.output.name
        let folder = output ?? settings.output.dir + "/" + runName
        let fineTune: FineTune
        if let resume {
            let path = resume == "latest" ? RunDirectory(path: folder).latest : resume
            guard let path else { throw CLIError("\(folder): no checkpoint to resume from") }
            say("resuming from \(path)")
            fineTune = try FineTune.resuming(path, overrides: assignments, runDirectory: folder)
        } else {
            fineTune = try FineTune(recipe: settings, runDirectory: folder)
        }
        say(Self.describe(fineTune.summary, recipe: fineTune.recipe))

        signal(SIGINT) { _ in interrupted = 1 }
        signal(SIGTERM) { _ in interrupted = 1 }
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        // mpirun hands ranks a terminal of its own: its log is lines, never a live line.
        let live = isatty(STDOUT_FILENO) == 1 && fineTune.summary.parallel == nil
        var lastValidation = fineTune.trainer.metrics.validationLosses.last
        let logEvery = fineTune.recipe.training.logEvery
        let outcome = try fineTune.run { event in
            switch event {
            case .step(let report):
                let rss = report.peakResidentBytes.map { String(format: "%.0f MiB", Double($0) / 1_048_576) } ?? "?"
                let plainLine = String(format: "step %d/%d  loss %.4f  val %@  lr %.2e  %.0f tok/s  ETA %@  peak RSS %@",
                                  report.step, report.totalSteps, report.loss, lastValidation.map { String(format: "%.4f", $0) } ?? "-",
                                  report.learningRate, report.tokensPerSecond, formatDuration(report.eta), rss)
                let line = plainLine + (report.parallel.map(Self.describe) ?? "")
                if live {
                    print("\r\u{1B}[2K" + line, terminator: "")
                } else if report.step % logEvery == 0 || report.step == 1 {
                    show(line)
                }
                fflush(nil)  // a log file or pipe sees each line as it happens
            case .validation(let step, let loss, _, let best):
                lastValidation = loss
                if live { show("") }
                show(String(format: "step %d  val loss %.4f  ppl %.2f%@", step, loss, Foundation.exp(loss), best != nil ? "  (best, saved best.h5)" : ""))
                fflush(nil)
            case .saved(let path, _, let reason):
                if live { show("") }
                show("saved \(path) (\(reason))")
                fflush(nil)
            }
            return interrupted != 0 ? .stop : .more
        }
        switch outcome {
        case .completed: break
        case .stoppedEarly:
            say("stopped early: no validation improvement in \(fineTune.recipe.training.earlyStoppingPatience) evaluations")
        case .interrupted:
            say("interrupted: resume with --resume latest")
            throw ExitCode(130)
        }
    }

    /// The set-up report printed before the first step.
    static func describe(_ s: FineTuneSummary, recipe: Recipe) -> String {
        let encoding = recipe.base.rawValue + (recipe.lora.initialization.rewritesBase ? " (\(recipe.lora.initialization.rawValue) residual)" : "")
        let d = s.train
        return """
        model     \(s.base.name) from \(s.base.path)
        license   \(ModelLicense.identify(s.base.license).line)
        base      \(encoding), \(String(format: "%.1f", Double(s.encodedBaseBytes) / 1_048_576)) MiB encoded, ready in \(String(format: "%.1f", s.setupSeconds)) s
        lora      r=\(recipe.lora.rank) alpha=\(Float(recipe.lora.alpha)) on \(s.adaptedModules) modules, \(s.trainableParameters) trainable parameters
        data      \(s.trainPath) (\(s.trainSource)): \(d.examples) examples, \(d.tokens) tokens (\(d.trainedTokens) trained), \(d.truncated) truncated, \(d.droppedTooLong + d.droppedUntrainable) dropped; packing efficiency \(String(format: "%.0f%%", 100 * s.packingEfficiency))
        valid     \(s.validationExamples.map { "\($0) examples" } ?? "none")\(s.skipped.map { "\nskipped   " + $0 }.joined())
        run       \(s.runDirectory), \(s.totalSteps) steps from step \(s.startStep)\(s.parallel.map { "\n" + describe($0) } ?? "")
        """
    }

    /// The ranks line of the set-up report.
    static func describe(_ p: ParallelSummary) -> String {
        let rows = p.rowsPerRank.lowerBound == p.rowsPerRank.upperBound ? "\(p.rowsPerRank.lowerBound)" : "\(p.rowsPerRank.lowerBound)–\(p.rowsPerRank.upperBound)"
        return "ranks     \(p.ranks) over \(p.transport): \(rows) rows each of a global batch of \(p.globalRows); all-reduce \(formatBytes(p.allReduceBytes)) per step"
    }

    /// A step's ranks, appended to its log line.
    static func describe(_ p: ParallelStepReport) -> String {
        let share = p.allReduceSeconds / max(p.computeSeconds + p.allReduceSeconds, 1e-9)
        return String(format: "  | %d ranks × %d rows, all-reduce %@ %.3f s (%.0f%% of the step)", p.ranks, p.rows,
                      formatBytes(p.allReduceBytes), p.allReduceSeconds, 100 * share)
    }
}
