import ArgumentParser
import Datasets
import Foundation
import Lorikeet
import LoRA
import TensorCore
import Training

/// `bench train --ranks N`: the same training under `mpirun` with 1 rank and with N, each rank
/// computing --batch rows per step (the global batch grows with N: weak scaling), then the
/// all-reduce alone, timed; rank 0 of each run prints one `rank-report` line the parent reads.
extension BenchTrain {
    /// What rank 0 of one mpirun run measured (medians over the timed steps).
    struct RankReport {
        var ranks: Int
        var stepSeconds: Double, computeSeconds: Double, allReduceSeconds: Double
        /// Bytes of the step's all-reduce, tokens each rank trains per step.
        var bytes: Int, tokensPerRank: Int
        /// The all-reduce alone, between steps: the gradient buffer, and one Float.
        var bufferSeconds: Double, smallSeconds: Double
        var model: String
        var peakMiB: Double

        var line: String {
            "rank-report ranks=\(ranks) step=\(stepSeconds) compute=\(computeSeconds) allreduce=\(allReduceSeconds) bytes=\(bytes) "
                + "tokens=\(tokensPerRank) buffer=\(bufferSeconds) small=\(smallSeconds) peak=\(peakMiB) model=\(model)"
        }

        init(ranks: Int, stepSeconds: Double, computeSeconds: Double, allReduceSeconds: Double, bytes: Int, tokensPerRank: Int,
             bufferSeconds: Double, smallSeconds: Double, model: String, peakMiB: Double) {
            (self.ranks, self.stepSeconds, self.computeSeconds, self.allReduceSeconds) = (ranks, stepSeconds, computeSeconds, allReduceSeconds)
            (self.bytes, self.tokensPerRank, self.bufferSeconds, self.smallSeconds, self.model, self.peakMiB) = (bytes, tokensPerRank, bufferSeconds, smallSeconds, model, peakMiB)
        }

        init?(line: Substring) {
            var fields: [String: String] = [:]
            for pair in line.split(separator: " ").dropFirst() {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            func number(_ key: String) -> Double? { fields[key].flatMap(Double.init) }
            guard let r = number("ranks"), let step = number("step"), let compute = number("compute"), let reduce = number("allreduce"),
                  let bytes = number("bytes"), let tokens = number("tokens"), let buffer = number("buffer"), let small = number("small") else { return nil }
            self.init(ranks: Int(r), stepSeconds: step, computeSeconds: compute, allReduceSeconds: reduce, bytes: Int(bytes), tokensPerRank: Int(tokens),
                      bufferSeconds: buffer, smallSeconds: small, model: fields["model"] ?? "?", peakMiB: number("peak") ?? .nan)
        }
    }

    /// One rank of a --ranks run (started by mpirun with --rank-worker).
    func runRankWorker() throws {
        let reducer: any GradientReducer
        do { reducer = try DataParallel.reducer() } catch { throw CLIError(error.description) }
        let n = reducer.ranks
        let recipe = try makeRecipe(gradientAccumulation: n)
        let (decoder, name) = try loadModel()
        do { try decoder.quantizeBase(to: recipe.base) } catch { throw CLIError(error.description) }
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter.attach(to: decoder, recipe: recipe) } catch { throw CLIError(error.description) }
        // Random tokens, every position trained; the same on every rank (one global data order).
        var rng = RandomGenerator(seed: 7)
        let vocabulary = UInt64(decoder.config.vocabSize)
        let examples = (0..<(batch * n * (steps + 1))).map { _ in
            TokenizedExample(ids: (0..<seq).map { _ in Int32(rng.next() % vocabulary) }, trained: [Bool](repeating: true, count: seq))
        }
        let data = TokenizedDataset(path: "random", examples: examples, statistics: DataStatistics())
        let trainer = Trainer(model: decoder, adapter: adapter, recipe: recipe, train: data, validation: nil, reducer: reducer)
        do { _ = try trainer.trainStep() } catch { throw CLIError(error.description) }  // warm-up
        var total: [Double] = [], compute: [Double] = [], reduce: [Double] = []
        for _ in 0..<steps {
            let report: StepReport
            do { report = try trainer.trainStep() } catch { throw CLIError(error.description) }
            total.append(report.elapsed)
            compute.append(report.parallel?.computeSeconds ?? report.elapsed)
            reduce.append(report.parallel?.allReduceSeconds ?? 0)
        }
        // The all-reduce alone, ranks lined up by a barrier first: the gradient buffer, one Float.
        let bytes = trainer.allReduceBytes
        var bufferTimes: [Double] = [0], smallTimes: [Double] = [0]
        if n > 1 {
            let buffer = TensorStorage(count: bytes / MemoryLayout<Float>.stride, zeroed: true), one = TensorStorage(count: 1, zeroed: true)
            do {
                try reducer.barrier(label: "bench")
                bufferTimes = try (0..<9).map { _ in try BenchTiming.throwingSeconds { try reducer.allReduceSum(buffer.base, count: buffer.count, label: "bench") } }
                smallTimes = try (0..<99).map { _ in try BenchTiming.throwingSeconds { try reducer.allReduceSum(one.base, count: 1, label: "bench") } }
            } catch { throw CLIError("\(error)") }
        }
        let report = RankReport(ranks: n, stepSeconds: BenchTiming.median(total), computeSeconds: BenchTiming.median(compute),
                                allReduceSeconds: BenchTiming.median(reduce), bytes: bytes, tokensPerRank: batch * seq,
                                bufferSeconds: BenchTiming.median(bufferTimes), smallSeconds: BenchTiming.median(smallTimes),
                                model: name.replacingOccurrences(of: " ", with: "_"),
                                peakMiB: Double(ProcessMemory.peakResidentBytes ?? 0) / 1_048_576)
        if reducer.rank == 0 { print(report.line) }
        fflush(nil)
        reducer.setCleanExit(true)
    }

    /// The arguments of this bench that a worker needs, without --ranks.
    var workerArguments: [String] {
        var arguments = ["train", "--batch", "\(batch)", "--seq", "\(seq)", "--rank", "\(rank)", "--targets", targets, "--base", base,
                         "--checkpointing", checkpointing, "--compute", compute, "--keep-mb", "\(keepMb)", "--dropout", "\(dropout)",
                         "--steps", "\(steps)", "--rank-worker"]
        if let config { arguments += ["--config", config] } else { arguments += ["--model", model] }
        return arguments
    }

    /// Runs the bench under mpirun with 1 rank, then with `n`, and prints the comparison and a
    /// projection to 64 ranks.
    func runRanks(_ n: Int) throws {
        guard n >= 2, n <= 64 else { throw ValidationError("--ranks is 2 … 64 (the 1-rank baseline always runs)") }
        guard threadsPerRank > 0 else { throw ValidationError("--threads-per-rank must be positive") }
        guard ["shm", "tcp"].contains(transport) else { throw ValidationError("--transport is shm or tcp") }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        print("data-parallel scaling: \(threadsPerRank) thread(s) per rank, \(batch) × \(seq) tokens per rank per step, \(steps) timed steps, "
              + "Open MPI over \(transport == "tcp" ? "TCP (loopback)" : "shared memory"); load average before: \(load)")
        var reports: [RankReport] = []
        for ranks in [1, n] {
            var arguments = ["mpirun", "--oversubscribe", "-np", "\(ranks)", "-x", "LORIKEET_THREADS=\(threadsPerRank)"]
            if getuid() == 0 { arguments.append("--allow-run-as-root") }
            if transport == "tcp" { arguments += ["--mca", "btl", "tcp,self"] }
            arguments += [executable] + workerArguments
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0, let line = output.split(separator: "\n").last(where: { $0.hasPrefix("rank-report") }),
                  let report = RankReport(line: line) else {
                throw CLIError("mpirun -np \(ranks) failed (exit \(process.terminationStatus)); is Open MPI installed (scripts/setup.sh)? \(output.suffix(300))")
            }
            reports.append(report)
        }
        let (one, many) = (reports[0], reports[1])
        print("model \(one.model.replacingOccurrences(of: "_", with: " ")); all-reduce of \(String(format: "%.1f", Double(one.bytes) / 1_048_576)) MiB per step (every LoRA gradient, Float32)")
        print("ranks  step s   compute s  all-reduce s  share   tok/s total  tok/s per rank  efficiency  peak RSS/rank")
        for r in reports {
            let tps = Double(r.ranks * r.tokensPerRank) / r.stepSeconds
            print(String(format: "%5d  %6.3f  %9.3f  %12.4f  %5.1f%%  %11.1f  %14.1f  %9.0f%%  %8.0f MiB", r.ranks, r.stepSeconds, r.computeSeconds, r.allReduceSeconds,
                         100 * r.allReduceSeconds / r.stepSeconds, tps, tps / Double(r.ranks), 100 * one.stepSeconds / r.stepSeconds, r.peakMiB))
        }
        // Ring all-reduce model: 2(N−1)/N · S/B + 2(N−1)·α; at N = 2, S/B + 2α. α from one Float,
        // B from the gradient buffer, both timed alone between steps.
        let alpha = many.smallSeconds / 2
        let bandwidth = Double(many.bytes) / max(many.bufferSeconds - many.smallSeconds, 1e-9)
        print(String(format: "all-reduce alone over %d ranks: %.1f MiB in %.4f s (%.2f GB/s algorithm bandwidth), one Float in %.1f µs",
                     n, Double(many.bytes) / 1_048_576, many.bufferSeconds, Double(many.bytes) / many.bufferSeconds / 1e9, many.smallSeconds * 1e6))
        print(String(format: "projection (ring all-reduce, B = %.2f GB/s and α = %.1f µs as measured here; 10 GbE: B = 1.25 GB/s, α = 50 µs), compute %.3f s per step per rank:",
                     bandwidth / 1e9, alpha * 1e6, one.computeSeconds))
        print("ranks  all-reduce s  step s  tok/s total  efficiency  | 10 GbE: all-reduce s  efficiency")
        for ranks in [1, 2, 4, 8, 16, 32, 64] {
            func ring(_ b: Double, _ a: Double) -> Double { ranks == 1 ? 0 : 2 * Double(ranks - 1) / Double(ranks) * Double(many.bytes) / b + 2 * Double(ranks - 1) * a }
            let here = ring(bandwidth, alpha), ethernet = ring(1.25e9, 50e-6)
            let step = one.computeSeconds + here
            print(String(format: "%5d  %12.4f  %6.3f  %11.1f  %9.0f%%  | %20.4f  %9.0f%%", ranks, here, step, Double(ranks * one.tokensPerRank) / step,
                         100 * one.computeSeconds / step, ethernet, 100 * one.computeSeconds / (one.computeSeconds + ethernet)))
        }
    }
}
