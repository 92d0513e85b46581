import Formats
import Foundation
import Training
import XCTest

/// `mpirun -np 2 lorikeet train …` as a user runs it, against the same run in one process with
/// gradient accumulation 2 (the oracle: the single-process loop the rest of the suite pins).
///
/// By default the runs use the tiny Llama fixture (GGUF, 96-token vocabulary) so the suite stays
/// quick in a debug build; `scripts/mpi/check-foldoc.sh` runs these same tests on SmolLM2 with the
/// FOLDOC recipe (bf16, dropout 0.05) and a release binary by setting:
///   LORIKEET_MPI_TEST_MODEL=smollm2      the FOLDOC recipe over the embedded SmolLM2
///   LORIKEET_MPI_TEST_BINARY=path        the lorikeet to run (default: beside this test bundle)
///   LORIKEET_MPI_TEST_SET="k=v k=v"      extra recipe overrides (e.g. data.max_seq_len=64)
/// Needs Open MPI's mpirun (scripts/setup.sh installs it); skips without it. The namespace
/// test also needs root (CAP_NET_ADMIN) and skips without it.
final class DataParallelRunTests: XCTestCase {
    static let environment = ProcessInfo.processInfo.environment
    static let useSmolLM2 = environment["LORIKEET_MPI_TEST_MODEL"] == "smollm2"
    static let binary = environment["LORIKEET_MPI_TEST_BINARY"] ?? DataPreviewCommandTests.executable
    static let extraSettings = (environment["LORIKEET_MPI_TEST_SET"] ?? "").split(separator: " ").map(String.init)
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let tinyModel = repository + "/Tests/ArchitecturesTests/Fixtures/llama/model.gguf"
    /// One folder for the whole class: data, the recipe, and the reference runs every test compares with.
    nonisolated(unsafe) static var folder = ""
    nonisolated(unsafe) static var references: [String: Checkpoint] = [:]

    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    override func setUpWithError() throws {
        guard Self.mpirun != nil else { throw XCTSkip("mpirun is not installed (Open MPI: scripts/setup.sh installs openmpi-bin)") }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.binary), "\(Self.binary) missing: build with swift build --build-tests")
        if Self.useSmolLM2 {
            guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
            guard FileManager.default.fileExists(atPath: "/usr/share/dictd/foldoc.index") else { throw XCTSkip("dict-foldoc is not installed: run scripts/setup.sh") }
        }
        if Self.folder.isEmpty { try Self.prepare() }
    }

    override class func tearDown() {
        if !folder.isEmpty { try? FileManager.default.removeItem(atPath: folder) }
        folder = ""
        references = [:]
        super.tearDown()
    }

    /// The data and the recipe: FOLDOC over SmolLM2, or seeded text over the tiny model.
    static func prepare() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-mpi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/data", withIntermediateDirectories: true)
        if useSmolLM2 {
            let prepared = try run([binary, "data", "prepare-foldoc", "--output", folder + "/data"], timeout: 600)
            guard prepared.status == 0 else { throw XCTSkip("prepare-foldoc failed: \(prepared.output)") }
            try FileManager.default.copyItem(atPath: repository + "/recipes/smollm2-foldoc.yaml", toPath: folder + "/recipe.yaml")
            return
        }
        let words = ["the", "adapter", "attention", "embedding", "of", "and", "in", "a", "tab", "dings", "embed", "an"]
        for (split, count) in [("train", 48), ("valid", 8)] {
            let lines = (0..<count).map { i -> String in
                let n = 5 + (i * 7) % 9
                let text = (0..<n).map { words[(i * 5 + $0 * 3 + $0 * $0) % words.count] }.joined(separator: " ")
                return #"{"text": "\#(text)"}"#
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: folder + "/data/\(split).jsonl", atomically: true, encoding: .utf8)
        }
        try """
        model:
          path: \(tinyModel)
        lora:
          rank: 4
          alpha: 8
          dropout: 0.1
        data:
          max_seq_len: 24
        training:
          batch_size: 2
          learning_rate: 5.0e-3
          warmup_steps: 2
          compute_dtype: bf16
        """.write(toFile: folder + "/recipe.yaml", atomically: true, encoding: .utf8)
    }

    /// Recipe overrides of every run here: 10 steps of grad accumulation 2, validating at step 5.
    static func settings(steps: Int = 10, saveEvery: Int = 5) -> [String] {
        ["data.path=\(folder)/data", "training.steps=\(steps)", "training.grad_accumulation=2", "training.eval_every=5",
         "training.eval_batches=4", "training.log_every=1", "output.save_every=\(saveEvery)", "output.keep_last=50"] + extraSettings
    }

    static func trainArguments(output: String, settings: [String]) -> [String] {
        [binary, "train", folder + "/recipe.yaml", "--output", output] + settings.flatMap { ["--set", $0] }
    }

    /// Environment of every run: the test's, a cache of this class's own, one thread per process.
    static var runEnvironment: [String: String] {
        var e = environment
        e["LORIKEET_CACHE"] = folder + "/cache"
        e["LORIKEET_MODEL_DIR"] = CacheLocation.models
        e["LORIKEET_THREADS"] = "1"
        e["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        e["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        return e
    }

    /// mpirun's own options for N ranks on this machine, forwarding the run's environment.
    static func mpirunArguments(ranks: Int, marker: String = "", timeout: String? = nil) -> [String] {
        [mpirun ?? "mpirun", "--oversubscribe", "-np", "\(ranks)", "-x", "LORIKEET_CACHE", "-x", "LORIKEET_MODEL_DIR", "-x", "LORIKEET_THREADS",
         "-x", "LORIKEET_TEST_MARKER=\(marker)"] + (timeout.map { ["-x", "LORIKEET_MPI_TIMEOUT=\($0)"] } ?? [])
    }

    /// A started process and where its output goes.
    final class Job {
        let process = Process()
        let log: String
        init(_ arguments: [String], environment: [String: String], log: String) throws {
            self.log = log
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.executableURL = URL(fileURLWithPath: arguments[0])
            process.arguments = Array(arguments.dropFirst())
            process.environment = environment
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        /// Waits up to `timeout` seconds; kills the process group on timeout. Returns the status (nil: timed out).
        func wait(timeout: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(100_000) }
            guard !process.isRunning else { process.terminate(); usleep(500_000); kill(process.processIdentifier, SIGKILL); return nil }
            return process.terminationStatus
        }
    }

    static func run(_ arguments: [String], environment: [String: String] = runEnvironment, timeout: Double = 1200) throws -> (status: Int32?, output: String) {
        let job = try Job(arguments, environment: environment, log: FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-mpi-\(UUID().uuidString).log").path)
        defer { try? FileManager.default.removeItem(atPath: job.log) }
        let status = job.wait(timeout: timeout)
        return (status, job.output)
    }

    /// The reference run `name` (trained once per class): "single" (one process) or "ranks" (mpirun -np 2).
    func reference(_ name: String) throws -> Checkpoint {
        if let done = Self.references[name] { return done }
        let output = Self.folder + "/" + name
        let train = Self.trainArguments(output: output, settings: Self.settings())
        let result = try Self.run(name == "single" ? train : Self.mpirunArguments(ranks: 2) + train)
        XCTAssertEqual(result.status, 0, result.output)
        if name == "ranks" {
            // The log: the ranks line once, the per-step all-reduce, rank 0's lines only.
            XCTAssertTrue(result.output.contains("ranks     2 over Open MPI"), result.output)
            XCTAssertTrue(result.output.contains("| 2 ranks × \(Self.useSmolLM2 ? 4 : 2) rows, all-reduce"), result.output)
            XCTAssertEqual(result.output.components(separatedBy: "step 1/10 ").count, 2, "one rank logs: \(result.output)")
        }
        let checkpoint = try Checkpoint(contentsOf: output + "/step-000010.h5")
        Self.references[name] = checkpoint
        return checkpoint
    }

    /// Losses step by step within 1e-5 relative, validation losses likewise, adapters within 1e-5.
    func assertSameRun(_ a: Checkpoint, _ b: Checkpoint, from step: Int = 1, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.metrics.steps, b.metrics.steps, what, file: file, line: line)
        var lossGap = 0.0, validationGap = 0.0
        for (s, (x, y)) in zip(a.metrics.steps, zip(a.metrics.losses, b.metrics.losses)) where s >= step {
            XCTAssertEqual(y, x, accuracy: 1e-5 * abs(x), "\(what): loss at step \(s)", file: file, line: line)
            lossGap = max(lossGap, abs(y - x) / abs(x))
        }
        XCTAssertEqual(a.metrics.validationSteps, b.metrics.validationSteps, what, file: file, line: line)
        for (x, y) in zip(a.metrics.validationLosses, b.metrics.validationLosses) {
            XCTAssertEqual(y, x, accuracy: 1e-5 * abs(x), "\(what): validation loss", file: file, line: line)
            validationGap = max(validationGap, abs(y - x) / abs(x))
        }
        XCTAssertEqual(Set(a.adapter.keys), Set(b.adapter.keys), what, file: file, line: line)
        var worst: Float = 0
        for (name, x) in a.adapter { for (u, v) in zip(x.values, b.adapter[name]?.values ?? []) { worst = max(worst, abs(u - v)) } }
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(what): largest adapter difference", file: file, line: line)
        print("\(what): losses of steps \(step)…\(a.metrics.steps.last ?? 0) \(b.metrics.losses.suffix(3).map { String(format: "%.6f", $0) }.joined(separator: " ")) (last three); "
              + "largest relative difference \(lossGap), validation \(validationGap); largest adapter difference \(worst)")
        XCTAssertEqual(a.state?.dataCursor, b.state?.dataCursor, what, file: file, line: line)
        XCTAssertEqual(a.state?.step, b.state?.step, what, file: file, line: line)
    }

    func testTwoRanksTrainWhatOneProcessTrainsWithAccumulation() throws {
        let single = try reference("single"), ranks = try reference("ranks")
        XCTAssertEqual(single.metrics.losses.count, 10)
        XCTAssertEqual(single.recipe.training.computeDType, .bf16)
        XCTAssertGreaterThan(single.recipe.lora.dropout, 0)
        assertSameRun(single, ranks, "mpirun -np 2 vs one process")
        // Training moved the adapter: the comparison compares something.
        XCTAssertTrue(ranks.adapter.values.contains { $0.values.contains { $0 != 0 } && $0.shape[0] > $0.shape[1] })
    }

    /// Rank 0 in one network namespace, rank 1 in another, a veth pair between them, Open MPI
    /// over TCP only (no shared memory): mpirun starts in the first namespace and reaches the
    /// second through an rsh agent that runs `ip netns exec`.
    func testTwoRanksInTwoNetworkNamespacesTrainTheSame() throws {
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }
        let tag = String(getpid() % 10_000)
        let (a, b) = ("lk\(tag)a", "lk\(tag)b")
        let octet = 100 + Int(getpid() % 150)
        let (ipA, ipB, net) = ("10.213.\(octet).1", "10.213.\(octet).2", "10.213.\(octet).0/24")
        func ip(_ arguments: String) throws -> Bool { try Self.run(["/usr/sbin/ip"] + arguments.split(separator: " ").map(String.init), timeout: 30).status == 0 }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip"), try ip("netns add \(a)") else {
            throw XCTSkip("cannot create network namespaces here (no CAP_NET_ADMIN, or iproute2 missing)")
        }
        defer { _ = try? ip("netns delete \(a)"); _ = try? ip("netns delete \(b)") }
        for command in ["netns add \(b)", "link add \(a)v type veth peer name \(b)v", "link set \(a)v netns \(a)", "link set \(b)v netns \(b)",
                        "-n \(a) addr add \(ipA)/24 dev \(a)v", "-n \(b) addr add \(ipB)/24 dev \(b)v", "-n \(a) link set \(a)v up",
                        "-n \(b) link set \(b)v up", "-n \(a) link set lo up", "-n \(b) link set lo up"] {
            XCTAssertTrue(try ip(command), "ip \(command)")
        }
        let agent = Self.folder + "/netns-agent.sh"
        try """
        #!/bin/sh
        # Open MPI's rsh agent: run the daemon's command line in the namespace of the host named.
        host=$1; shift
        case $host in
          \(ipA)) ns=\(a) ;;
          \(ipB)) ns=\(b) ;;
          *) echo "netns-agent: unknown host $host" >&2; exit 1 ;;
        esac
        exec /usr/sbin/ip netns exec "$ns" /bin/sh -c "$*"
        """.write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)

        let output = Self.folder + "/netns"
        let launch = ["/usr/sbin/ip", "netns", "exec", a, Self.mpirun ?? "mpirun", "--host", "\(ipA):1,\(ipB):1", "--mca", "plm_rsh_agent", agent,
                      "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", net, "--mca", "oob_tcp_if_include", net]
            + Self.mpirunArguments(ranks: 2).dropFirst(2)  // -np 2 and the forwarded environment
        let result = try Self.run(launch + Self.trainArguments(output: output, settings: Self.settings()))
        XCTAssertEqual(result.status, 0, result.output)
        assertSameRun(try reference("single"), try Checkpoint(contentsOf: output + "/step-000010.h5"), "two namespaces over TCP vs one process")
        // Both ranks really were in their namespaces: each sees only its own end of the veth pair.
        let probe = try Self.run(launch + ["/bin/sh", "-c", "echo rank $OMPI_COMM_WORLD_RANK: $(/usr/sbin/ip -o -4 addr show | grep -o '10\\.213\\.[0-9.]*/24')"],
                                 timeout: 60)
        XCTAssertTrue(probe.output.contains("rank 0: \(ipA)/24"), probe.output)
        XCTAssertTrue(probe.output.contains("rank 1: \(ipB)/24"), probe.output)
    }

    /// The process of rank `rank` of the job started with `marker`.
    static func rankProcess(_ rank: Int, marker: String) -> pid_t? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for name in names {
            guard let pid = pid_t(name), let data = FileManager.default.contents(atPath: "/proc/\(name)/environ") else { continue }
            let variables = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if variables.contains("LORIKEET_TEST_MARKER=\(marker)") && variables.contains("OMPI_COMM_WORLD_RANK=\(rank)")
                && !variables.contains(where: { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") && $0 != "OMPI_COMM_WORLD_RANK=\(rank)" }) {
                if let command = try? String(contentsOfFile: "/proc/\(name)/cmdline", encoding: .utf8), command.contains("train") { return pid }
            }
        }
        return nil
    }

    /// Kill rank 1 with SIGKILL after a checkpoint: mpirun stops the job within 60 s, non-zero,
    /// naming rank 1; the last checkpoint reads back whole and, resumed in one process with
    /// accumulation 2, the run finishes with the losses of the uninterrupted 2-rank run.
    func testAKilledRankStopsTheJobAndOneProcessResumesTheRun() throws {
        // The tiny model trains a step in milliseconds: a longer run leaves time to kill it.
        let (steps, saveEvery, killAfter) = Self.useSmolLM2 ? (10, 2, 4) : (240, 20, 60)
        let settings = Self.settings(steps: steps, saveEvery: saveEvery)
        let output = Self.folder + "/killed", marker = UUID().uuidString
        let job = try Job(Self.mpirunArguments(ranks: 2, marker: marker) + Self.trainArguments(output: output, settings: settings),
                          environment: Self.runEnvironment, log: Self.folder + "/killed.log")
        let run = RunDirectory(path: output)
        let deadline = Date().addingTimeInterval(1200)
        while job.process.isRunning, Date() < deadline, !run.stepFiles().contains(run.stepFile(killAfter)) { usleep(50_000) }
        let victim = try XCTUnwrap(Self.rankProcess(1, marker: marker), "rank 1 not found: \(job.output)")
        XCTAssertTrue(job.process.isRunning, "the run ended before rank 1 could be killed: \(job.output)")
        let killed = Date()
        kill(victim, SIGKILL)
        let status = job.wait(timeout: 90)
        let seconds = Date().timeIntervalSince(killed)
        XCTAssertNotNil(status, "the job did not stop within 90 s of rank 1's death")
        XCTAssertNotEqual(status, 0)
        XCTAssertLessThan(seconds, 60, job.output)
        XCTAssertTrue(job.output.contains("rank 1"), job.output)
        let last = try XCTUnwrap(run.latest)
        let saved = try Checkpoint(contentsOf: last)  // whole: it reads back
        let savedStep = try XCTUnwrap(saved.state?.step)
        XCTAssertGreaterThanOrEqual(savedStep, killAfter)
        XCTAssertLessThan(savedStep, steps, "killed before the end")
        print("rank 1 killed after step \(killAfter) checkpoint; job stopped \(String(format: "%.1f", seconds)) s later with status \(status ?? -1); resuming \(last)")

        // The uninterrupted 2-rank run of the same recipe (how often it saves changes nothing),
        // then the resumed one in one process.
        let expected: Checkpoint
        if steps == 10 {
            expected = try reference("ranks")
        } else {
            let straight = Self.folder + "/straight"
            let reference = try Self.run(Self.mpirunArguments(ranks: 2) + Self.trainArguments(output: straight, settings: settings))
            XCTAssertEqual(reference.status, 0, reference.output)
            expected = try Checkpoint(contentsOf: RunDirectory(path: straight).stepFile(steps))
        }
        let resumed = try Self.run(Self.trainArguments(output: output, settings: []) + ["--resume", last])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        assertSameRun(expected, try Checkpoint(contentsOf: run.stepFile(steps)), from: savedStep + 1, "resumed on one process vs uninterrupted on two ranks")
    }

    /// A rank that stops answering (SIGSTOP) trips the other rank's watchdog. (Its limit must
    /// exceed how far apart the ranks' steps finish: seconds for SmolLM2 on a loaded machine.)
    func testAStuckRankStopsTheJobThroughTheWatchdog() throws {
        let steps = Self.useSmolLM2 ? 10 : 100_000, limit = Self.useSmolLM2 ? 40 : 5
        let output = Self.folder + "/stuck", marker = UUID().uuidString
        let job = try Job(Self.mpirunArguments(ranks: 2, marker: marker, timeout: "\(limit)") + Self.trainArguments(output: output, settings: Self.settings(steps: steps, saveEvery: 0)),
                          environment: Self.runEnvironment, log: Self.folder + "/stuck.log")
        let deadline = Date().addingTimeInterval(600)
        while job.process.isRunning, Date() < deadline, !job.output.contains("step 2/") { usleep(50_000) }
        let victim = try XCTUnwrap(Self.rankProcess(1, marker: marker), job.output)
        let stopped = Date()
        kill(victim, SIGSTOP)
        let status = job.wait(timeout: Double(limit) + 90)
        let seconds = Date().timeIntervalSince(stopped)
        kill(victim, SIGKILL)
        XCTAssertNotNil(status, job.output)
        XCTAssertNotEqual(status, 0, job.output)
        XCTAssertLessThan(seconds, Double(limit) + 60, job.output)
        XCTAssertTrue(job.output.contains("rank 0 of 2: MPI_Allreduce"), job.output)
        XCTAssertTrue(job.output.contains("waited more than \(limit) s"), job.output)
        print("rank 1 stopped (SIGSTOP): the job ended \(String(format: "%.1f", seconds)) s later (watchdog limit \(limit) s) with status \(status ?? -1)")
    }

    /// A rank whose run fails (rank 0 cannot create the run folder) takes the job down with it,
    /// naming itself, instead of leaving rank 1 waiting in the all-reduce.
    func testARankThatFailsStopsTheJobNamingIt() throws {
        let blocker = Self.folder + "/not-a-folder"
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        let started = Date()
        let result = try Self.run(Self.mpirunArguments(ranks: 2) + Self.trainArguments(output: blocker + "/run", settings: Self.settings()), timeout: 600)
        XCTAssertNotNil(result.status, result.output)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("rank 0: \(blocker)/run: cannot create the run folder"), result.output)
        // The job ends through MPI_Abort, not through rank 1's watchdog. Open MPI's own banner
        // ("MPI_ABORT was invoked on rank 0") is sometimes lost in its show_help relay
        // ("ORTE_ERROR_LOG: Data unpack would read past end of buffer"), so it is not required.
        let seconds = Date().timeIntervalSince(started)
        XCTAssertFalse(result.output.contains("waited more than"), result.output)
        XCTAssertLessThan(seconds, 120, result.output)
        print("a failed rank 0 stopped the job in \(String(format: "%.1f", seconds)) s")
    }
}
