import ArgumentParser
import Foundation
import TensorCore
import CBLAS

/// `lorikeet-bench` (also reached as `lorikeet bench`): benchmarks that print ratios against a
/// baseline measured in the same run, with peak memory. Not timed unit tests: commands.
@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorikeet bench",
        abstract: "Benchmarks that print ratios against a baseline measured in the same run.",
        subcommands: [BenchGemm.self, BenchKernels.self, BenchTokenize.self, BenchData.self, BenchTrain.self, BenchEpoch.self, BenchGenerate.self, BenchServe.self]
    )

    static func main() {
        Parallel.configureBLAS()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}

/// A failure reported as one line ("Error: …", exit 1).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The engine's matmul (OpenBLAS single-threaded, blocks over the engine's pool) against raw
/// `cblas_sgemm` on OpenBLAS's own threads, same shapes, interleaved in one run.
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Engine matmul GFLOP/s vs raw cblas_sgemm (same shapes, same run; medians).",
        discussion: "Shapes are M×K×N: x[M, K] · W[N, K]ᵀ, the linear layer of a training step. The last line is the headline."
    )

    @Option(help: "Timed repetitions per shape (interleaved engine/raw).") var repeats = 15
    @Option(help: "Comma-separated shapes M×K×N (or MxKxN).") var shapes = "256x576x576,1024x576x192,1024x1536x576,2048x576x1536"

    func run() throws {
        let parsed = try shapes.split(separator: ",").map { spec -> (Int, Int, Int) in
            let parts = spec.split(whereSeparator: { $0 == "x" || $0 == "×" }).compactMap { Int($0) }
            guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("bad shape '\(spec)': expected M×K×N with positive integers, e.g. 2048x576x1536")
            }
            return (parts[0], parts[1], parts[2])
        }
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
        print("threads: \(Parallel.threadCount) (raw: OpenBLAS's own threads; engine: blocks over its pool)   repeats: \(repeats), median times")
        print("shape M×K×N".padding(toLength: 20, withPad: " ", startingAt: 0) + "  raw GFLOP/s  engine GFLOP/s  engine/raw")
        for (m, k, n) in parsed {
            var rng = RandomGenerator(seed: 1)
            let x = Tensor(uniform: [m, k], rng: &rng), w = Tensor(uniform: [n, k], rng: &rng)
            let rawOut = TensorStorage(count: m * n)
            func raw() { BenchTiming.rawSgemm(m: m, n: n, k: k, a: x.storage.base, b: w.storage.base, c: rawOut.base) }
            func engine() { _ = noGrad { x.matmul(w, transposeB: true) } }
            raw(); usleep(300_000); engine()  // warm-up: threads spun up, pages touched
            var rawTimes: [Double] = [], engineTimes: [Double] = []
            for rep in 0..<repeats {
                // Alternate which goes first so drift on this machine hits both equally. After a
                // raw product OpenBLAS's idle workers keep spinning for a while (THREAD_TIMEOUT)
                // and would take a core from the engine's pool: let them park first.
                if rep % 2 == 0 {
                    rawTimes.append(BenchTiming.seconds(raw))
                    usleep(300_000)
                    engineTimes.append(BenchTiming.seconds(engine))
                } else {
                    engineTimes.append(BenchTiming.seconds(engine))
                    rawTimes.append(BenchTiming.seconds(raw))
                    usleep(300_000)
                }
            }
            let flops = 2.0 * Double(m) * Double(k) * Double(n)
            let rawG = flops / BenchTiming.median(rawTimes) / 1e9, engineG = flops / BenchTiming.median(engineTimes) / 1e9
            let label = "\(m)×\(k)×\(n)".padding(toLength: 20, withPad: " ", startingAt: 0)
            print(label + String(format: "  %11.1f  %14.1f  %9.1f%%", rawG, engineG, 100 * engineG / rawG))
        }
        print(BenchTiming.peakMemoryLine)
    }


}
