import ArgumentParser
import Datasets
import Foundation
import Lorikeet
import LoRA
import Architectures
import TensorCore
import Training

/// Training throughput on random tokens: tokens/s, achieved GFLOP/s (nominal, from the model's
/// shape) as a fraction of raw `cblas_sgemm` measured in the same process, and peak RSS;
/// `--vs-peft` interleaves runs of the PyTorch+PEFT peer on the same settings.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training tokens/s and GFLOP/s (vs raw sgemm, same run) on random tokens, with peak RSS.",
        discussion: """
        Every position is trained (the worst case for the head). FLOPs per token: 4 per frozen linear \
        weight (forward and input gradient), 4 per head weight, 6 per LoRA weight, 6·T·C per layer \
        for causal attention; a checkpointed layer's recomputation is work, not counted.
        Example: lorikeet bench train --batch 4 --seq 256 --rank 16 --vs-peft fp32
        --config llama-1b|llama-7b-shape builds a model of that shape with random NF4 weights (no \
        download) and prints its memory at rest per base parameter, to see how time and memory grow \
        with size: lorikeet bench train --config llama-7b-shape --batch 1 --seq 128 --steps 1 --rounds 1
        --ranks N runs the same training under mpirun with 1 and with N ranks (each rank --batch rows \
        per step, --threads-per-rank threads) and prints tokens/s per rank, the all-reduce's share of \
        the step, scaling efficiency, the measured all-reduce bandwidth, and a projection to 64 ranks: \
        lorikeet bench train --ranks 2 --compute bf16 --dropout 0.05
        """)

    @Option(help: "A .gguf file or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "Instead of --model, a synthetic shape with random NF4 weights: llama-1b, llama-7b-shape.") var config: String?
    @Option(help: "Rows per batch.") var batch = 4
    @Option(help: "Tokens per row.") var seq = 256
    @Option(help: "LoRA rank.") var rank = 16
    @Option(help: "all-linear or a comma-separated list of module names.") var targets = "all-linear"
    @Option(help: "Base precision: nf4, q8_0, f32, source.") var base = "nf4"
    @Option(help: "Recompute each layer in backward (on) or keep activations (off).") var checkpointing = "on"
    @Option(help: "What the frozen base's matmuls compute in: f32 or bf16 (training.compute_dtype).") var compute = "f32"
    @Option(help: "MiB of frozen-base products checkpointed layers keep for their recomputation (training.checkpoint_keep_mb).") var keepMb = 0
    @Option(help: "LoRA dropout (0 as in the PEFT peer; the recipe default is 0.05).") var dropout = 0.0
    @Option(help: "Timed steps (after one warm-up step).") var steps = 5
    @Option(help: "Also run ../shared/peers/peft_train_bench.py with MODE=fp32|bf16|nf4, interleaved with ours.") var vsPeft: String?
    @Option(help: "Rounds when comparing with PEFT (ours, theirs, ours, theirs, …).") var rounds = 3
    @Option(help: "Also run under mpirun with 1 and with this many ranks (data-parallel scaling).") var ranks: Int?
    @Option(help: "With --ranks: engine threads per rank (LORIKEET_THREADS).") var threadsPerRank = 1
    @Option(help: "With --ranks: Open MPI transport between ranks, shm (default) or tcp (--mca btl tcp,self).") var transport = "shm"
    @Flag(help: .hidden) var rankWorker = false

    func run() throws {
        guard batch > 0, seq > 1, rank > 0, steps > 0, rounds > 0, (0..<1).contains(dropout) else { throw ValidationError("--batch, --seq, --rank, --steps, --rounds must be positive and --dropout in [0, 1)") }
        guard ["on", "off"].contains(checkpointing) else { throw ValidationError("--checkpointing is on or off") }
        guard ComputeDType(rawValue: compute) != nil else { throw ValidationError("--compute is f32 or bf16") }
        if rankWorker { return try runRankWorker() }
        if let ranks { return try runRanks(ranks) }
        let recipe = try makeRecipe()
        let (decoder, name) = try loadModel()
        // At rest: the base encoded as it will be trained over, before the adapter and any step.
        do { try decoder.quantizeBase(to: recipe.base) } catch { throw CLIError(error.description) }
        let restingBytes = ProcessMemory.residentBytes
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter.attach(to: decoder, recipe: recipe) } catch { throw CLIError(error.description) }
        let c = decoder.config
        let flopsPerToken = Self.flopsPerToken(model: decoder, adapter: adapter, seq: seq)

        // Random tokens, every position trained, one example per row.
        var rng = RandomGenerator(seed: 7)
        let examples = (0..<(batch * (steps + 1) * rounds)).map { _ in
            TokenizedExample(ids: (0..<seq).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }, trained: [Bool](repeating: true, count: seq))
        }
        let data = TokenizedDataset(path: "random", examples: examples, statistics: DataStatistics())
        let trainer = Trainer(model: decoder, adapter: adapter, recipe: recipe, train: data, validation: nil)

        let gemmGFLOPs = Self.sgemmGFLOPs()
        let parameters = Self.baseParameters(decoder)
        print(String(format: "model %@: %d layers, C=%d, V=%d, %.3f B base parameters; %@ base, r=%d on %d modules, batch %d × %d, checkpointing %@, base matmuls %@%@, threads %d",
                     name, c.layerCount, c.hiddenSize, c.vocabSize, Double(parameters) / 1e9, base, rank, adapter.layers.count, batch, seq, checkpointing,
                     compute, compute == "bf16" ? (BF16GEMM.isNative ? " (vdpbf16ps)" : " (portable kernel)") : "", Parallel.threadCount))
        if let restingBytes {
            print(String(format: "memory at rest (base encoded, before the adapter): %.1f MiB RSS, %.3f bytes per base parameter",
                         Double(restingBytes) / 1_048_576, Double(restingBytes) / Double(parameters)))
        }
        print(String(format: "nominal work %.3f GFLOP per token; raw cblas_sgemm (1024×576×1536) %.1f GFLOP/s in this process", flopsPerToken / 1e9, gemmGFLOPs))
        var ours: [Double] = [], theirs: [Double] = []
        var perStep: [BufferCache.Counters] = []  // round 1's timed steps
        for round in 0..<rounds {
            do { _ = try trainer.trainStep() } catch { throw CLIError(error.description) }  // warm-up: buffers, pages
            var times: [Double] = []
            for _ in 0..<steps {
                let before = BufferCache.shared.counters
                let seconds = try BenchTiming.throwingSeconds { _ = try trainer.trainStep() }
                times.append(seconds)
                if round == 0 { perStep.append(BufferCache.shared.counters - before) }
            }
            let tps = Double(batch * seq) / BenchTiming.median(times)
            ours.append(tps)
            print(String(format: "round %d  lorikeet: %.1f tok/s, %.1f GFLOP/s (%.0f%% of sgemm), step %.2f s", round + 1, tps,
                         tps * flopsPerToken / 1e9, 100 * tps * flopsPerToken / 1e9 / gemmGFLOPs, BenchTiming.median(times)))
            if let mode = vsPeft {
                let peer = try Self.runPeer(mode: mode, batch: batch, seq: seq, rank: rank, steps: steps)
                theirs.append(peer.tokensPerSecond)
                print(String(format: "round %d  peft %@: %.1f tok/s, peak RSS %.0f MiB", round + 1, mode, peer.tokensPerSecond, peer.peakMiB))
            }
        }
        if vsPeft != nil {
            print(String(format: "median: lorikeet %.1f tok/s, peft %.1f tok/s, ratio %.2f×", BenchTiming.median(ours), BenchTiming.median(theirs),
                         BenchTiming.median(ours) / BenchTiming.median(theirs)))
        } else {
            print(String(format: "median: lorikeet %.1f tok/s; × base parameters: %.2f G (compare across --config)", BenchTiming.median(ours),
                         BenchTiming.median(ours) * Double(parameters) / 1e9))
        }
        // Large blocks (≥ 64 KiB) come from the buffer cache; a steady state maps none fresh.
        let fresh = perStep.map { String(format: "%d (%.1f MiB)", $0.mapped, Double($0.mappedBytes) / 1_048_576) }
        print("large buffers per timed step of round 1: reused \(perStep.map { String($0.reused) }.joined(separator: ", ")); "
              + "mapped fresh \(fresh.joined(separator: ", ")); returned to the system \(perStep.map { String($0.unmapped) }.joined(separator: ", ")); "
              + "small (malloc) \(perStep.map { String($0.small) }.joined(separator: ", "))")
        print(BenchTiming.peakMemoryLine)
    }

    /// The recipe these flags describe; `gradientAccumulation` micro-batches of --batch rows
    /// per step (one per rank in a --ranks run).
    func makeRecipe(gradientAccumulation: Int = 1) throws -> Recipe {
        var document = RecipeDocument()
        do {
            for s in ["training.batch_size=\(batch)", "data.max_seq_len=\(seq)", "lora.rank=\(rank)", "lora.alpha=\(2 * rank)", "lora.dropout=\(dropout)",
                      "quantization.base=\(base)", "training.gradient_checkpointing=\(checkpointing == "on")", "training.warmup_steps=0",
                      "training.eval_every=0", "training.steps=\(steps + 1)", "training.compute_dtype=\(compute)",
                      "training.checkpoint_keep_mb=\(keepMb)", "training.grad_accumulation=\(gradientAccumulation)"] { try document.override(s) }
            try document.override("lora.targets=" + (targets == "all-linear" ? "all-linear" : "[\(targets)]"))
        } catch { throw CLIError(error.description) }
        do { return try Recipe(document) } catch { throw CLIError(error.description) }
    }

    /// The model named by --model, or the synthetic shape named by --config.
    func loadModel() throws -> (DecoderModel, String) {
        guard let config else {
            let session = try BaseModel(loading: model)
            return (session.model, session.name)
        }
        guard let shape = SyntheticShape(rawValue: config) else {
            throw ValidationError("--config is one of \(SyntheticShape.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard base == "nf4" else { throw ValidationError("--config builds an NF4 base; --base \(base) needs a real model") }
        let source = SyntheticWeightSource(shape: shape)
        do { return (try DecoderModel(config: source.config, weights: source), shape.rawValue) } catch { throw CLIError(error.description) }
    }

    /// Weights of the base model (embedding, projections, a separate head, norms), counted from
    /// the configuration so the figure is the architecture's.
    static func baseParameters(_ model: DecoderModel) -> Int {
        let c = model.config
        let (q, kv) = (c.headCount * c.headDim, c.kvHeadCount * c.headDim)
        let perLayer = c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize
        return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.layerCount * perLayer + c.hiddenSize
    }

    /// Nominal training FLOPs per token (see the discussion).
    static func flopsPerToken(model: DecoderModel, adapter: LoRAAdapter, seq: Int) -> Double {
        let c = model.config
        var frozen = 0.0, lora = 0.0
        for (_, layer) in model.namedLinears {
            if let adapted = layer as? LoRALinear {
                frozen += Double(adapted.inputFeatures * adapted.outputFeatures)
                lora += Double(adapted.a.count + adapted.b.count)
            } else {
                frozen += Double(layer.inputFeatures * layer.outputFeatures)
            }
        }
        let head = c.tieWordEmbeddings ? Double(c.vocabSize * c.hiddenSize) : 0  // a separate head is in namedLinears
        let attention = 6.0 * Double(seq) * Double(c.headCount * c.headDim) * Double(c.layerCount)
        return 4 * frozen + 4 * head + 6 * lora + attention
    }

    static func sgemmGFLOPs() -> Double {
        let (m, k, n) = (1024, 576, 1536)
        var rng = RandomGenerator(seed: 1)
        let a = Tensor(uniform: [m, k], rng: &rng), b = Tensor(uniform: [n, k], rng: &rng), out = TensorStorage(count: m * n)
        func run() { BenchTiming.rawSgemm(m: m, n: n, k: k, a: a.storage.base, b: b.storage.base, c: out.base) }
        run()
        let times = (0..<9).map { _ in BenchTiming.seconds(run) }
        return 2.0 * Double(m * k * n) / BenchTiming.median(times) / 1e9
    }

    /// One run of the PEFT peer; parses its one-line report.
    static func runPeer(mode: String, batch: Int, seq: Int, rank: Int, steps: Int) throws -> (tokensPerSecond: Double, peakMiB: Double) {
        let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/peers").standardized.path
        let script = ProcessInfo.processInfo.environment["LORIKEET_PEERS"].map { $0 + "/peft_train_bench.py" } ?? peers + "/peft_train_bench.py"
        let line = try BenchTiming.peerReport(script: script, environment: ["MODE": mode, "B": "\(batch)", "S": "\(seq)", "R": "\(rank)", "STEPS": "\(steps + 1)"],
                                              prefix: "peft", what: "--vs-peft")
        func number(before unit: String) -> Double? {
            guard let r = line.range(of: " " + unit) else { return nil }
            return Double(line[..<r.lowerBound].split(separator: " ").last ?? "")
        }
        guard let tps = number(before: "tok/s") else { throw CLIError("cannot read the PEFT peer's report: \(line)") }
        return (tps, number(before: "MiB") ?? .nan)
    }
}
