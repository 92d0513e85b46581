import ArgumentParser
import Foundation
import Lorikeet
import Architectures
import TensorCore

/// Prefill and decode speed with the KV cache, llama-bench style (fixed pseudo-random token
/// ids, no sampling); `--vs-llamacpp` interleaves llama.cpp on the same GGUF and threads.
struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and decode tokens/s with the KV cache (llama-bench's pp/tg), optionally against llama.cpp in the same run.",
        discussion: """
        Each round prefills --prompt-tokens ids in one batch, then decodes --tokens more one at a \
        time (each step computes the next-token logits). --vs-llamacpp runs \
        scripts/bench/llamacpp_generate_bench.py (llama-cpp-python from ../shared/peers) after each \
        of our rounds, with the same counts and LORIKEET_THREADS (default: all cores), and prints the \
        median ratios. llama.cpp's threads spin while they wait: on a busy machine it suffers more \
        than we do, so compare on a quiet one.
        Example: lorikeet bench generate --vs-llamacpp --rounds 5
        """)

    @Option(help: "A .gguf file or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "Prompt tokens prefilled in one batch.") var promptTokens = 128
    @Option(help: "Tokens decoded one at a time after the prompt.") var tokens = 64
    @Option(help: "Rounds (medians are reported).") var rounds = 3
    @Flag(help: "Interleave llama.cpp (llama-cpp-python) runs on the same GGUF.") var vsLlamacpp = false

    func run() throws {
        guard promptTokens > 0, tokens > 0, rounds > 0 else { throw ValidationError("--prompt-tokens, --tokens, --rounds must be positive") }
        let session = try BaseModel(loading: model)
        let m = session.model, v = m.config.vocabSize
        var rng = RandomGenerator(seed: 7)
        let prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(v)) }
        let decode = (0..<tokens).map { _ in Int32(rng.next() % UInt64(v)) }
        print(String(format: "model %@: prefill %d tokens, then decode %d, threads %d", session.name, promptTokens, tokens, Parallel.threadCount))
        var ours: [(prefill: Double, decode: Double)] = [], theirs: [(prefill: Double, decode: Double, peakMiB: Double?)] = []
        for round in 1...rounds {
            let cache = m.makeCache(capacity: promptTokens + tokens)
            let prefill = BenchTiming.seconds { _ = m.nextTokenLogits(ids: prompt, cache: cache) }
            let decodeSeconds = BenchTiming.seconds { for id in decode { _ = m.nextTokenLogits(ids: [id], cache: cache) } }
            ours.append((Double(promptTokens) / prefill, Double(tokens) / decodeSeconds))
            print(String(format: "round %d  lorikeet: prefill %.1f tok/s, decode %.1f tok/s", round, ours[round - 1].prefill, ours[round - 1].decode))
            if vsLlamacpp {
                theirs.append(try runLlamaCpp(path: session.path))
                print(String(format: "round %d  llama.cpp: prefill %.1f tok/s, decode %.1f tok/s", round, theirs[round - 1].prefill, theirs[round - 1].decode))
            }
        }
        let (p, d) = (BenchTiming.median(ours.map(\.prefill)), BenchTiming.median(ours.map(\.decode)))
        if vsLlamacpp {
            let (tp, td) = (BenchTiming.median(theirs.map(\.prefill)), BenchTiming.median(theirs.map(\.decode)))
            print(String(format: "median: prefill %.1f vs llama.cpp %.1f tok/s (%.2f×); decode %.1f vs %.1f tok/s (%.2f×)", p, tp, p / tp, d, td, d / td))
            if let peak = theirs.compactMap(\.peakMiB).max() { print(String(format: "llama.cpp peak RSS %.0f MiB (its Python process)", peak)) }
        } else {
            print(String(format: "median: prefill %.1f tok/s, decode %.1f tok/s", p, d))
        }
        print(BenchTiming.peakMemoryLine)
    }

    /// One llama.cpp run; parses its one-line report.
    func runLlamaCpp(path: String) throws -> (prefill: Double, decode: Double, peakMiB: Double?) {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/bench/llamacpp_generate_bench.py").standardized.path
        let line = try BenchTiming.peerReport(script: script, environment: ["MODEL": path, "P": "\(promptTokens)", "N": "\(tokens)", "THREADS": "\(Parallel.threadCount)"],
                                              prefix: "llama.cpp", what: "--vs-llamacpp")
        func number(after label: String) -> Double? {
            guard let r = line.range(of: label + " ") else { return nil }
            return Double(line[r.upperBound...].prefix { $0 != " " })
        }
        guard let prefill = number(after: "prefill"), let decode = number(after: "decode") else { throw CLIError("cannot read llama.cpp's report: \(line)") }
        return (prefill, decode, number(after: "RSS"))
    }
}
