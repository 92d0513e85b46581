import ArgumentParser
import Datasets
import Formats
import Foundation
import Lorikeet
import Architectures
import TensorCore
import Tokenization
import Training

/// The whole data pipeline (read, parse, template, tokenize, mask, fit) on N threads against
/// one thread, same file, same run; the tokenization cache is bypassed.
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Data pipeline throughput (MB/s of JSONL, cache bypassed): N threads vs 1 thread, medians.",
        discussion: "Example: lorikeet bench data --recipe recipes/smollm2-foldoc.yaml --set data.path=/tmp/foldoc. A folder's train.jsonl is used. The last line is the headline.")

    @Option(help: "A recipe (its model, data and settings).") var recipe: String?
    @Option(help: "Model (without --recipe).") var model = "smollm2"
    @Option(help: "A JSONL file or a folder with train.jsonl (without --recipe).") var data: String?
    @Option(name: .customLong("set"), help: "Override a recipe key (repeatable).") var overrides: [String] = []
    @Option(help: "Threads of the parallel run (default: all cores).") var threads = Parallel.threadCount
    @Option(help: "Timed repetitions per thread count (interleaved, after one warm-up).") var repeats = 3

    func run() throws {
        guard threads > 0, repeats > 0 else { throw ValidationError("--threads and --repeats must be positive") }
        let settings = try Recipe.forData(recipeFile: recipe, model: model, data: data, overrides: overrides)
        var isDirectory: ObjCBool = false
        let path = FileManager.default.fileExists(atPath: settings.data.path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? settings.data.path + "/train.jsonl" : settings.data.path
        guard FileManager.default.isReadableFile(atPath: path) else { throw CLIError("\(path): no such readable file") }
        let text = try ModelText(loading: settings.model.path)
        let encoder = ExampleEncoder(tokenizer: text.tokenizer, template: text.chatTemplate, trainOn: settings.data.trainOn)
        let d = settings.data

        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var examples = 0, tokens = 0
        func pipeline(_ threads: Int) throws {
            do {
                // Encoded into a temporary file and mapped, as training loads it.
                let dataset = try TokenizedDataset.load(path: path, format: d.format.format, fields: d.fields, encoder: encoder, batching: settings.batching(),
                                                        skipInvalid: d.skipInvalid, cache: nil, threads: threads)
                (examples, tokens) = (dataset.count, dataset.statistics.tokens)
            } catch { throw CLIError("\(error)") }
        }
        try pipeline(threads)  // warm-up: pages cached, the tokenizer's word cache filled
        var one: [Double] = [], many: [Double] = [], oneCPU: [Double] = [], manyCPU: [Double] = []
        for rep in 0..<repeats {
            var error: Error?
            // Wall and CPU seconds: on a shared machine CPU time shows whether N threads did
            // the same work (other processes take cores) or more (contention).
            func timed(_ n: Int) -> (Double, Double) {
                let cpu = Self.cpuSeconds()
                let wall = BenchTiming.seconds { do { try pipeline(n) } catch let e { error = e } }
                return (wall, Self.cpuSeconds() - cpu)
            }
            // Alternate which goes first so drift on this machine hits both equally.
            let (a, b) = rep % 2 == 0 ? (timed(1), timed(threads)) : { let m = timed(threads); return (timed(1), m) }()
            one.append(a.0); oneCPU.append(a.1); many.append(b.0); manyCPU.append(b.1)
            if let error { throw error }
        }
        let mb = Double(bytes) / 1e6
        print(String(format: "%@: %.2f MB, %d examples, %d tokens; median of %d after a warm-up; cache bypassed", path, mb, examples, tokens, repeats))
        let (t1, tn) = (BenchTiming.median(one), BenchTiming.median(many))
        func label(_ s: String) -> String { s.padding(toLength: 12, withPad: " ", startingAt: 0) }
        print(label("") + "  wall s     MB/s    cpu s")
        print(label("1 thread") + String(format: "%8.3f  %7.2f  %7.3f", t1, mb / t1, BenchTiming.median(oneCPU)))
        print(label("\(threads) threads") + String(format: "%8.3f  %7.2f  %7.3f  (%.2f× one thread)", tn, mb / tn, BenchTiming.median(manyCPU), t1 / tn))
        print(BenchTiming.peakMemoryLine)
    }

    /// User + system CPU seconds of the whole process (every thread) so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
