import ArgumentParser
import Foundation

/// `lorikeet bench …` runs `lorikeet-bench …`, the benchmarks' own executable built beside this
/// one (benchmarks are commands, not part of the CLI's code).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks that print ratios against a baseline measured in the same run (runs lorikeet-bench).")

    @Argument(parsing: .captureForPassthrough, help: "Arguments for lorikeet-bench (gemm, kernels, tokenize, data, train, epoch, generate, serve).")
    var arguments: [String] = []

    func run() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("lorikeet-bench").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw CLIError("\(executable) is missing; build it with: swift build -c release --product lorikeet-bench")
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        execv(executable, argv)
        throw CLIError("cannot run \(executable) (\(String(cString: strerror(errno))))")
    }
}
