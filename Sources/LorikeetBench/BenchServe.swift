import ArgumentParser
import Foundation
import Lorikeet
import Architectures
import Formats
import LoRA
import Serving
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// The server under load over loopback: one client alone, then N clients at once over the base
/// and the adapters, in the same run. Prints aggregate decode tokens/s (and its ratio to the lone
/// client's), time to first token and the gap between tokens (p50/p99), and memory.
struct BenchServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Aggregate tokens/s, time to first token and per-token latency of lorikeet serve under N concurrent clients.",
        discussion: """
        Starts the server in this process on a free loopback port, streams chat completions at \
        temperature 0 (max --max-tokens each) through real sockets, requests spread round-robin \
        over the base and every --adapter. First --single requests from one client (the baseline), \
        then --clients clients doing --requests each. RSS is read before and after the concurrent \
        phase: it should stay flat. --soak N then sends N more requests over the same clients and \
        prints RSS at its start, middle and end.
        Example: lorikeet bench serve --clients 16 --requests 4 --synthetic-adapters 3 --soak 1000
        """)

    @Option(help: "A .gguf file, a Hugging Face folder or 'smollm2'.") var model = "smollm2"
    @Option(help: "NAME=PATH adapters served beside the base (repeatable).") var adapter: [String] = []
    @Option(help: "Concurrent clients.") var clients = 8
    @Option(help: "Requests per concurrent client.") var requests = 2
    @Option(help: "Requests of the lone client (the baseline).") var single = 2
    @Option(help: "Most tokens per answer.") var maxTokens = 32
    @Flag(help: "Send every request to the base only (no adapters).") var baseOnly = false
    @Option(help: "Also serve N random rank-8 adapters (q_proj and v_proj) written to a temporary folder (SmolLM2-sized bases).")
    var syntheticAdapters = 0
    @Option(help: "The base encoding the synthetic adapters' recipes name (source: the file's own weights, shared with the base's requests; nf4, q8_0, f32: one re-encoded copy for them).")
    var syntheticBase = BasePrecision.source.rawValue
    @Option(help: "After the timed phases, N more requests over --clients clients, printing RSS at their start, middle and end (0: none).")
    var soak = 0

    static let questions = ["What is a monad?", "What is a compiler?", "Define recursion.", "What is TCP?", "Explain a hash table.",
                            "What is an operating system?", "What does a linker do?", "What is a closure?"]

    func run() throws {
        guard clients > 0, requests > 0, single > 0, maxTokens > 0, soak >= 0 else { throw ValidationError("counts must be positive") }
        guard let syntheticPrecision = BasePrecision(rawValue: syntheticBase) else {
            throw ValidationError("--synthetic-base is one of \(BasePrecision.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var adapters = adapter.map(ServeOptions.parseAdapter)
        if syntheticAdapters > 0 {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-bench-serve-\(getpid())").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let config = try BaseModel(loading: model).config
            for i in 0..<syntheticAdapters {
                adapters.append(("synthetic\(i)", try Self.writeSyntheticAdapter(folder + "/synthetic\(i).h5", config: config, seed: UInt64(i + 1),
                                                                                base: syntheticPrecision)))
            }
            return try serve(adapters)
        }
        try serve(adapters)
    }

    /// A random rank-8 adapter on q_proj and v_proj of every layer, trained (as far as its recipe
    /// says) over the base encoded as `base`.
    static func writeSyntheticAdapter(_ path: String, config: ModelConfig, seed: UInt64, base: BasePrecision = .q8_0) throws -> String {
        var document = RecipeDocument()
        for s in ["lora.rank=8", "lora.alpha=16", "lora.dropout=0", "lora.targets=[q_proj, v_proj]", "quantization.base=\(base.rawValue)"] {
            try document.override(s)
        }
        var archive = HDF5Archive()
        archive.strings["recipe"] = try Recipe(document).yaml
        var rng = RandomGenerator(seed: seed)
        let c = config.hiddenSize
        for layer in 0..<config.layerCount {
            for (target, out) in [("self_attn.q_proj", config.headCount * config.headDim), ("self_attn.v_proj", config.kvHeadCount * config.headDim)] {
                let module = WeightNames.layer(layer, target)
                for (which, shape) in [("A", [8, c]), ("B", [out, 8])] {
                    let t = Tensor(uniform: shape, low: -0.05, high: 0.05, rng: &rng)
                    archive.floatArrays["adapter/" + LoRAAdapter.pefName(module, which)] = .init(shape: shape, values: t.scalars)
                }
            }
        }
        try archive.write(to: path)
        return path
    }

    func serve(_ adapters: [(name: String, path: String)]) throws {
        let options = ServeOptions(model: model, modelName: "base", adapters: adapters, port: 0,
                                   limits: EngineLimits(maxConcurrent: clients, maxQueued: clients, context: 2048, maxTokensCap: maxTokens))
        let rssEmpty = ProcessMemory.residentBytes
        let server = try LorikeetServer(options: options)
        print(String(format: "RSS before loading %.1f MiB, with the base and %d adapters loaded %.1f MiB (%d base decoder(s) held)",
                     Self.mib(rssEmpty), adapters.count, Self.mib(ProcessMemory.residentBytes), server.baseDecoderCount))
        let names = baseOnly ? [server.baseName] : server.modelNames
        let ready = DispatchSemaphore(value: 0)
        let bound = Bound()
        Task.detached {
            try? await server.run { port in
                bound.port = port
                ready.signal()
            }
            ready.signal()
        }
        ready.wait()
        guard bound.port > 0 else { throw CLIError("the server did not start") }
        defer { server.shutdown() }
        print("models: \(names.joined(separator: ", ")); \(clients) clients × \(requests) requests, max \(maxTokens) tokens each")

        let client = StreamClient(port: bound.port)
        _ = try client.ask(model: names[0], question: "Hi", maxTokens: min(4, maxTokens))  // warm-up
        let lone = Phase()
        let loneStart = Date()
        for i in 0..<single { lone.add(try client.ask(model: names[i % names.count], question: Self.questions[i % Self.questions.count], maxTokens: maxTokens)) }
        let loneSeconds = Date().timeIntervalSince(loneStart)

        let rssBefore = ProcessMemory.residentBytes
        let many = Phase()
        let failures = Failures()
        let manyStart = Date()
        // One thread per client (concurrentPerform would run only as many at once as there are cores).
        runConcurrently(clients) { c in
            for r in 0..<requests {
                let i = c * requests + r
                do { many.add(try client.ask(model: names[i % names.count], question: Self.questions[i % Self.questions.count], maxTokens: maxTokens)) } catch {
                    failures.add("\(error)")
                }
            }
        }
        let manySeconds = Date().timeIntervalSince(manyStart)
        let rssAfter = ProcessMemory.residentBytes
        if !failures.list.isEmpty { throw CLIError("\(failures.list.count) requests failed: \(failures.list[0])") }

        let loneRate = Double(lone.tokens) / loneSeconds, manyRate = Double(many.tokens) / manySeconds
        print(String(format: "1 client:   %d requests, %d tokens in %.2f s = %.1f tok/s; TTFT p50 %.0f ms; per token p50 %.1f ms",
                     single, lone.tokens, loneSeconds, loneRate, 1000 * lone.ttft(0.5), 1000 * lone.gap(0.5)))
        print(String(format: "%d clients: %d requests, %d tokens in %.2f s = %.1f tok/s aggregate (%.2f× one client)",
                     clients, clients * requests, many.tokens, manySeconds, manyRate, manyRate / loneRate))
        print(String(format: "  time to first token p50 %.0f ms, p99 %.0f ms; per-token latency (per request) p50 %.1f ms, p99 %.1f ms",
                     1000 * many.ttft(0.5), 1000 * many.ttft(0.99), 1000 * many.gap(0.5), 1000 * many.gap(0.99)))
        // Decoding alone (prefill excluded): a lone stream makes 1/gap tokens/s; N streams decoding together N/gap.
        let loneDecode = 1 / lone.gap(0.5), manyDecode = Double(clients) / many.gap(0.5)
        print(String(format: "decode only (from the per-token latency p50): 1 client %.1f tok/s, %d clients %.1f tok/s aggregate (%.2f×)",
                     loneDecode, clients, manyDecode, manyDecode / loneDecode))
        print(String(format: "RSS before the concurrent phase %.1f MiB, after %.1f MiB; %@", Double(rssBefore ?? 0) / 1_048_576,
                     Double(rssAfter ?? 0) / 1_048_576, BenchTiming.peakMemoryLine))
        if soak > 0 { try runSoak(client: client, names: names) }
    }

    static func mib(_ bytes: Int?) -> Double { Double(bytes ?? 0) / 1_048_576 }

    /// `soak` requests over `clients` threads (a shared counter hands out the next request),
    /// RSS read when the first starts, when half are done and at the end.
    func runSoak(client: StreamClient, names: [String]) throws {
        let counter = SoakCounter(total: soak)
        let failures = Failures()
        let start = Date()
        print(String(format: "soak: %d requests over %d clients; RSS at start %.1f MiB", soak, clients, Self.mib(ProcessMemory.residentBytes)))
        let maxTokens = maxTokens
        runConcurrently(clients) { _ in
            while let i = counter.next() {
                do { _ = try client.ask(model: names[i % names.count], question: Self.questions[i % Self.questions.count], maxTokens: maxTokens) } catch {
                    failures.add("\(error)")
                }
                if counter.finishOne() == soak / 2 {
                    print(String(format: "soak: %d requests done, RSS %.1f MiB", soak / 2, Self.mib(ProcessMemory.residentBytes)))
                }
            }
        }
        if !failures.list.isEmpty { throw CLIError("soak: \(failures.list.count) requests failed: \(failures.list[0])") }
        print(String(format: "soak: %d requests done in %.1f s, RSS at end %.1f MiB; %@", soak, Date().timeIntervalSince(start),
                     Self.mib(ProcessMemory.residentBytes), BenchTiming.peakMemoryLine))
    }

    final class SoakCounter: @unchecked Sendable {
        private let lock = NSLock()
        private var issued = 0, done = 0
        let total: Int
        init(total: Int) { self.total = total }
        /// The next request's index, or nil when all are handed out.
        func next() -> Int? { lock.withLock { guard issued < total else { return nil }; issued += 1; return issued - 1 } }
        /// Counts a finished request; returns how many are finished now.
        func finishOne() -> Int { lock.withLock { done += 1; return done } }
    }

    final class Bound: @unchecked Sendable { var port = 0 }

    /// Runs `body(0..<n)` on n threads at once and waits for all of them.
    func runConcurrently(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<n {
            group.enter()
            let thread = Thread {
                body(i)
                group.leave()
            }
            thread.start()
        }
        group.wait()
    }

    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var list: [String] = []
        func add(_ s: String) { lock.withLock { list.append(s) } }
    }

    /// Timings of a phase's requests.
    final class Phase: @unchecked Sendable {
        private let lock = NSLock()
        private var ttfts: [Double] = [], gaps: [Double] = []
        private(set) var tokens = 0

        func add(_ t: StreamClient.Timing) {
            lock.withLock {
                tokens += t.tokens
                if let first = t.firstToken { ttfts.append(first) }
                gaps += t.gaps
            }
        }

        func ttft(_ q: Double) -> Double { lock.withLock { Self.quantile(ttfts, q) } }
        func gap(_ q: Double) -> Double { lock.withLock { Self.quantile(gaps, q) } }

        static func quantile(_ values: [Double], _ q: Double) -> Double {
            guard !values.isEmpty else { return .nan }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))]
        }
    }
}

/// Streams one chat completion over a socket, timing each content delta as it arrives.
struct StreamClient: Sendable {
    let port: Int

    struct Timing {
        var firstToken: Double?
        /// The request's mean time per token after the first (one value; empty for one-token answers).
        var gaps: [Double] = []
        /// Completion tokens, from the stream's usage chunk.
        var tokens = 0
    }

    func ask(model: String, question: String, maxTokens: Int) throws -> Timing {
        let body: [String: Any] = ["model": model, "messages": [["role": "user", "content": question]], "temperature": 0,
                                   "max_tokens": maxTokens, "stream": true, "stream_options": ["include_usage": true]]
        let json = try JSONSerialization.data(withJSONObject: body)
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\nConnection: close\r\n\r\n"
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw CLIError("cannot connect to 127.0.0.1:\(port)") }
        let request = Array(head.utf8) + [UInt8](json)
        let start = Date()
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { throw CLIError("send failed") }
        var timing = Timing()
        var last: Date?
        var pieces = 0
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let marker = Array(#""delta":{"content":""#.utf8), empty = Array(#""delta":{"content":"","#.utf8)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            let now = Date()
            let piece = Array(buffer[0..<n])
            all += piece
            let deltas = Self.count(marker, in: piece) - Self.count(empty, in: piece)
            if deltas > 0 {
                if timing.firstToken == nil { timing.firstToken = now.timeIntervalSince(start) }
                last = now
                pieces += deltas
            }
        }
        // Per-token latency of the request (vLLM's TPOT): from the first piece to the last, per piece after the first.
        if let first = timing.firstToken, let last, pieces > 1 {
            timing.gaps = [(last.timeIntervalSince(start) - first) / Double(pieces - 1)]
        }
        let text = String(decoding: all, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200") else { throw CLIError("HTTP error: \(text.prefix(300))") }
        guard let range = text.range(of: #""completion_tokens":(\d+)"#, options: .regularExpression) else { throw CLIError("no usage in the stream") }
        timing.tokens = Int(text[range].split(separator: ":")[1]) ?? 0
        return timing
    }

    static func count(_ needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard haystack.count >= needle.count else { return 0 }
        var n = 0
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { n += 1 }
        return n
    }
}
