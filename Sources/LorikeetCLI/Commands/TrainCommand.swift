import ArgumentParser
import Datasets
import Formats
import Foundation
import LoRA
import Architectures
import TensorCore
import Training

/// Set by SIGINT: the loop saves at the end of the current step and stops.
nonisolated(unsafe) private var interrupted: sig_atomic_t = 0

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Fine-tune a LoRA/QLoRA adapter from a YAML recipe.",
        discussion: """
        Example: lorikeet train recipes/smollm2-foldoc.yaml --set training.steps=150
        Checkpoints go to <output.dir>/<run name>/step-NNNNNN.h5 (and best.h5); Ctrl-C saves one and stops.
        """)

    @Argument(help: "Recipe file (YAML); every key has a default.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe key: section.key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Resume from a checkpoint file, or 'latest' for the newest in the run folder.") var resume: String?
    @Option(help: "Run folder (default: <output.dir>/<recipe name>).") var output: String?
    @Flag(help: "Count and report bad records instead of stopping at the first (recipe key data.skip_invalid).") var skipInvalid = false

    /// `--set` assignments, then the flags that stand for recipe keys.
    var assignments: [String] { overrides + (skipInvalid ? ["data.skip_invalid=true"] : []) }

    func run() throws {
        var document: RecipeDocument
        let text: String
        do { text = try String(contentsOfFile: recipe, encoding: .utf8) } catch { throw CLIError("\(recipe): cannot read the recipe (\(error.localizedDescription))") }
        do {
            document = try RecipeDocument(yaml: text, source: recipe)
            for o in assignments { try document.override(o) }
        } catch { throw CLIError(error.description) }
        var settings: Recipe
        do { settings = try Recipe(document) } catch { throw CLIError(error.description) }
        let runName = settings.output.name.isEmpty ? ((recipe as NSString).lastPathComponent as NSString).deletingPathExtension : settings.output.name
        let run = RunDirectory(path: output ?? settings.output.directory + "/" + runName)

        // A resumed run continues with the recipe it was started with (plus any --set given now).
        var resumeArchive: HDF5Archive?
        if let resume {
            let path = resume == "latest" ? run.latest : resume
            guard let path else { throw CLIError("\(run.path): no checkpoint to resume from") }
            do {
                let archive = try HDF5Archive(contentsOf: path)
                guard let saved = archive.strings["recipe"] else { throw CLIError("\(path): not a Lorikeet checkpoint (no recipe)") }
                document = try RecipeDocument(yaml: saved, source: path + " (recipe)")
                for o in assignments { try document.override(o) }
                settings = try Recipe(document)
                resumeArchive = archive
                note("resuming from \(path)")
            } catch let e as FormatError { throw CLIError(e.description) } catch let e as RecipeError { throw CLIError(e.description) }
        }

        let session = try ModelSession(settings.model)
        let identity = try session.identity()
        if let saved = resumeArchive?.strings["base/sha256"], saved != identity.sha256 {
            throw CLIError("\(session.path) is not the base this checkpoint was trained on (SHA-256 \(identity.sha256.prefix(12))…, checkpoint expects \(saved.prefix(12))…)")
        }
        let model = session.model
        let loadStart = Date()
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter.attach(to: model, recipe: settings) } catch { throw CLIError(error.description) }
        let baseBytes = model.encodedWeightBytes + adapter.frozenBaseBytes
        guard !adapter.layers.isEmpty else { throw CLIError("lora.targets matches no module of this model (names look like q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)") }

        var batching = settings.data.batching
        batching.padID = session.tokenizer.eos ?? 0
        settings.data.batching = batching
        let encoder = ExampleEncoder(tokenizer: session.tokenizer, template: session.template, trainOn: settings.data.trainOn)
        let (train, valid): (TokenizedDataset, TokenizedDataset?)
        do { (train, valid) = try RecipeData.load(settings.data, encoder: encoder, seed: settings.training.seed,
                                                                  cache: TokenizationCache(directory: CacheLocation.tokenizedData)) } catch { throw CLIError(error.description) }
        let trainer = Trainer(model: model, adapter: adapter, recipe: settings, train: train, validation: valid)
        if let resumeArchive {
            do { try Checkpoint.restore(resumeArchive, into: trainer, source: resume ?? "") } catch { throw CLIError(error.description) }
        }

        let trainable = adapter.parameters.reduce(0) { $0 + $1.tensor.count }
        let stats = train.statistics
        note("""
        model     \(identity.name) (\(identity.license)) from \(session.path)
        base      \(settings.base.rawValue)\(settings.lora.initialization.rewritesBase ? " (\(settings.lora.initialization.rawValue) residual)" : ""), \(String(format: "%.1f", Double(baseBytes) / 1_048_576)) MiB encoded, ready in \(String(format: "%.1f", Date().timeIntervalSince(loadStart))) s
        lora      r=\(settings.lora.rank) alpha=\(settings.lora.alpha) on \(adapter.layers.count) modules, \(trainable) trainable parameters
        data      \(train.path) (\(train.source)): \(stats.examples) examples, \(stats.tokens) tokens (\(stats.trainedTokens) trained), \(stats.truncated) truncated, \(stats.droppedTooLong + stats.droppedUntrainable) dropped; packing efficiency \(String(format: "%.0f%%", 100 * train.packingEfficiency(batching, seed: settings.training.seed)))
        valid     \(valid.map { "\($0.examples.count) examples" } ?? "none")\(SkippedRecords.of([train, valid]).report.map { "\nskipped   " + $0 }.joined())
        run       \(run.path), \(trainer.totalSteps) steps from step \(trainer.step)
        """)

        do { try FileManager.default.createDirectory(atPath: run.path, withIntermediateDirectories: true) } catch {
            throw CLIError("\(run.path): cannot create the run folder (\(error.localizedDescription))")
        }
        signal(SIGINT) { _ in interrupted = 1 }
        defer { signal(SIGINT, SIG_DFL) }
        let live = isatty(STDOUT_FILENO) == 1
        func save(_ why: String) throws {
            do { try run.save(Checkpoint.archive(of: trainer, base: identity), step: trainer.step, keepLast: settings.output.keepLast) } catch {
                throw CLIError(error.description)
            }
            if live { print("") }
            print("saved \(run.stepFile(trainer.step)) (\(why))")
        }
        func evaluate() throws {
            let loss: Double?
            do { loss = try trainer.validate() } catch { throw CLIError(error.description) }
            guard let loss else { return }
            let improved = trainer.recordValidation(loss)
            if improved {
                do { try Checkpoint.archive(of: trainer, base: identity).write(to: run.bestFile) } catch { throw CLIError(error.description) }
            }
            if live { print("") }
            print(String(format: "step %d  val loss %.4f  ppl %.2f%@", trainer.step, loss, Foundation.exp(loss), improved ? "  (best, saved best.h5)" : ""))
            fflush(nil)
        }

        var lastValidation: Double? = trainer.metrics.validationLosses.last
        while !trainer.finished {
            let report: StepReport
            do { report = try trainer.trainStep() } catch {
                guard case .nonFiniteLoss = error else { throw CLIError(error.description) }
                throw CLIError(error.description + "\nlast good checkpoint: " + (run.latest ?? "none yet (nothing was saved before this step)"))
            }
            let rss = report.peakResidentBytes.map { String(format: "%.0f MiB", Double($0) / 1_048_576) } ?? "?"
            let line = String(format: "step %d/%d  loss %.4f  val %@  lr %.2e  %.0f tok/s  ETA %@  peak RSS %@",
                              report.step, report.totalSteps, report.loss, lastValidation.map { String(format: "%.4f", $0) } ?? "-",
                              report.learningRate, report.tokensPerSecond, formatDuration(report.eta), rss)
            if live {
                print("\r\u{1B}[2K" + line, terminator: "")
                fflush(nil)
            } else if report.step % settings.training.logEvery == 0 || report.step == 1 {
                print(line)
                fflush(nil)  // a log file or pipe sees each line as it happens
            }
            if settings.training.evalEvery > 0, report.step % settings.training.evalEvery == 0, report.step < trainer.totalSteps {
                try evaluate()
                lastValidation = trainer.metrics.validationLosses.last
                if trainer.earlyStoppingReached { try save("early stopping"); note("stopped early: no validation improvement in \(settings.training.earlyStoppingPatience) evaluations"); return }
            }
            if interrupted != 0 { try save("interrupted"); note("interrupted: resume with --resume latest"); throw ExitCode(130) }
            if settings.output.saveEvery > 0, report.step % settings.output.saveEvery == 0, report.step < trainer.totalSteps { try save("every \(settings.output.saveEvery) steps") }
        }
        try evaluate()
        try save("final")
    }
}
