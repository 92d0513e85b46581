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
        --vs-llamacpp then starts llama-cpp-python's OpenAI server (a child process, on a free \
        loopback port, the same GGUF and thread count, every adapter exported with Lorikeet's GGUF \
        exporter; several adapters are several `models` of its --config_file, between which it \
        swaps, as it cannot batch across them) and runs the same clients against it; --rounds \
        alternates the two and prints the medians and the ratio Lorikeet / llama.cpp.
        Example: lorikeet bench serve --clients 16 --requests 4 --synthetic-adapters 3 --soak 1000
        Example: lorikeet bench serve --vs-llamacpp --synthetic-adapters 1 --adapter-only --clients 8 --rounds 2
        """)

    @Option(help: "A .gguf file, a Hugging Face folder or 'smollm2'.") var model = "smollm2"
    @Option(help: "NAME=PATH adapters served beside the base (repeatable).") var adapter: [String] = []
    @Option(help: "Concurrent clients.") var clients = 8
    @Option(help: "Requests per concurrent client.") var requests = 2
    @Option(help: "Requests of the lone client (the baseline).") var single = 2
    @Option(help: "Most tokens per answer.") var maxTokens = 32
    @Flag(help: "Send every request to the base only (no adapters).") var baseOnly = false
    @Flag(help: "Send every request to an adapter (round-robin over them), none to the base.") var adapterOnly = false
    @Option(help: "Also serve N random rank-8 adapters (q_proj and v_proj) written to a temporary folder (SmolLM2-sized bases).")
    var syntheticAdapters = 0
    @Option(help: "The base encoding the synthetic adapters' recipes name (source: the file's own weights, shared with the base's requests; nf4, q8_0, f32: one re-encoded copy for them).")
    var syntheticBase = BasePrecision.source.rawValue
    @Option(help: "After the timed phases, N more requests over --clients clients, printing RSS at their start, middle and end (0: none).")
    var soak = 0
    @Option(help: "Times the timed phases run (with --vs-llamacpp alternating with llama.cpp's); medians are printed.") var rounds = 1
    @Flag(help: "After Lorikeet's phases, run the same clients against llama-cpp-python's server on the same GGUF, adapters (exported to LoRA GGUFs) and threads.")
    var vsLlamacpp = false
    @Option(help: "The Python with llama-cpp-python[server] (default: $LORIKEET_PEERS_VENV/bin/python, else ~/.cache/lorikeet-peers/venv/bin/python).")
    var llamacppPython: String?

    /// Positions per sequence on both servers: the chat prompts and answers fit with room to spare.
    static let context = 2048

    static let questions = ["What is a monad?", "What is a compiler?", "Define recursion.", "What is TCP?", "Explain a hash table.",
                            "What is an operating system?", "What does a linker do?", "What is a closure?"]

    func run() throws {
        guard clients > 0, requests > 0, single > 0, maxTokens > 0, soak >= 0, rounds > 0 else { throw ValidationError("counts must be positive") }
        guard !(baseOnly && adapterOnly) else { throw ValidationError("--base-only and --adapter-only exclude each other") }
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
                                   limits: EngineLimits(maxConcurrent: clients, maxQueued: clients, context: Self.context, maxTokensCap: maxTokens))
        let rssEmpty = ProcessMemory.residentBytes
        let server = try LorikeetServer(options: options)
        print(String(format: "RSS before loading %.1f MiB, with the base and %d adapters loaded %.1f MiB (%d base decoder(s) held)",
                     Self.mib(rssEmpty), adapters.count, Self.mib(ProcessMemory.residentBytes), server.baseDecoderCount))
        let names = baseOnly ? [server.baseName] : adapterOnly ? Array(server.modelNames.dropFirst()) : server.modelNames
        guard !names.isEmpty else { throw ValidationError("--adapter-only needs at least one --adapter or --synthetic-adapters") }
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
        var peer: LlamaCppServer?
        defer { peer?.stop() }
        if vsLlamacpp {
            peer = try LlamaCppServer.start(model: model, adapters: adapters, names: names, baseName: server.baseName,
                                            python: llamacppPython ?? LlamaCppServer.defaultPython, maxTokens: maxTokens)
            if let peer {
                do { _ = try peer.client.ask(model: names[0], question: "Hi", maxTokens: min(4, maxTokens)) }  // warm-up
                catch { throw CLIError("llama.cpp: \(error); its log ends: \(peer.logTail)") }
            }
        }
        var ours: [PhaseResult] = [], theirs: [PhaseResult] = []
        for round in 1...rounds {
            if rounds > 1 { print("round \(round)") }
            ours.append(try runPhases(client: client, names: names, label: "lorikeet", rss: { ProcessMemory.residentBytes }))
            if let peer {
                do { theirs.append(try runPhases(client: peer.client, names: names, label: "llama.cpp", rss: { peer.residentBytes })) }
                catch { throw CLIError("\(error); llama.cpp's log ends: \(peer.logTail)") }
            }
        }
        if vsLlamacpp {
            let (lone, many) = (BenchTiming.median(ours.map(\.loneRate)), BenchTiming.median(ours.map(\.manyRate)))
            let (peerLone, peerMany) = (BenchTiming.median(theirs.map(\.loneRate)), BenchTiming.median(theirs.map(\.manyRate)))
            print(String(format: "median of %d: 1 client lorikeet %.1f vs llama.cpp %.1f tok/s (%.2f×); %d clients lorikeet %.1f vs llama.cpp %.1f tok/s aggregate (%.2f×)",
                         rounds, lone, peerLone, lone / peerLone, clients, many, peerMany, many / peerMany))
        } else if rounds > 1 {
            print(String(format: "median of %d: 1 client %.1f tok/s; %d clients %.1f tok/s aggregate", rounds,
                         BenchTiming.median(ours.map(\.loneRate)), clients, BenchTiming.median(ours.map(\.manyRate))))
        }
        print(BenchTiming.peakMemoryLine)
        if soak > 0 { try runSoak(client: client, names: names) }
    }

    struct PhaseResult {
        var loneRate: Double, manyRate: Double
    }

    /// The lone client's requests, then the concurrent clients', against one server; prints the
    /// metrics under `label` and returns the two rates. `rss` reads the server's resident memory.
    func runPhases(client: StreamClient, names: [String], label: String, rss: () -> Int?) throws -> PhaseResult {
        let lone = Phase()
        let loneStart = Date()
        for i in 0..<single { lone.add(try client.ask(model: names[i % names.count], question: Self.questions[i % Self.questions.count], maxTokens: maxTokens)) }
        let loneSeconds = Date().timeIntervalSince(loneStart)

        let rssBefore = rss()
        let many = Phase()
        let failures = Failures()
        let manyStart = Date()
        // One thread per client (concurrentPerform would run only as many at once as there are cores).
        let (requests, maxTokens) = (requests, maxTokens)
        runConcurrently(clients) { c in
            for r in 0..<requests {
                let i = c * requests + r
                do { many.add(try client.ask(model: names[i % names.count], question: Self.questions[i % Self.questions.count], maxTokens: maxTokens)) } catch {
                    failures.add("\(error)")
                }
            }
        }
        let manySeconds = Date().timeIntervalSince(manyStart)
        let rssAfter = rss()
        if !failures.list.isEmpty { throw CLIError("\(label): \(failures.list.count) requests failed: \(failures.list[0])") }

        let loneRate = Double(lone.tokens) / loneSeconds, manyRate = Double(many.tokens) / manySeconds
        print(String(format: "%@ 1 client:   %d requests, %d tokens in %.2f s = %.1f tok/s; TTFT p50 %.0f ms; per token p50 %.1f ms",
                     label, single, lone.tokens, loneSeconds, loneRate, 1000 * lone.ttft(0.5), 1000 * lone.gap(0.5)))
        print(String(format: "%@ %d clients: %d requests, %d tokens in %.2f s = %.1f tok/s aggregate (%.2f× one client)",
                     label, clients, clients * requests, many.tokens, manySeconds, manyRate, manyRate / loneRate))
        print(String(format: "  time to first token p50 %.0f ms, p99 %.0f ms; per-token latency (per request) p50 %.1f ms, p99 %.1f ms",
                     1000 * many.ttft(0.5), 1000 * many.ttft(0.99), 1000 * many.gap(0.5), 1000 * many.gap(0.99)))
        // Decoding alone (prefill excluded): a lone stream makes 1/gap tokens/s; N streams decoding together N/gap.
        let loneDecode = 1 / lone.gap(0.5), manyDecode = Double(clients) / many.gap(0.5)
        print(String(format: "  decode only (from the per-token latency p50): 1 client %.1f tok/s, %d clients %.1f tok/s aggregate (%.2f×)",
                     loneDecode, clients, manyDecode, manyDecode / loneDecode))
        print(String(format: "  server RSS before the concurrent phase %.1f MiB, after %.1f MiB", Self.mib(rssBefore), Self.mib(rssAfter)))
        return PhaseResult(loneRate: loneRate, manyRate: manyRate)
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

/// Streams one chat completion over a socket, timing each content delta as it arrives. The same
/// client measures Lorikeet and llama-cpp-python's server, so it reads the stream as events:
/// `data: {json}` lines, whatever the server's spacing or chunk framing.
struct StreamClient: Sendable {
    let port: Int

    struct Timing {
        var firstToken: Double?
        /// The request's mean time per token after the first (one value; empty for one-token answers).
        var gaps: [Double] = []
        /// Completion tokens: the stream's usage chunk when it sends one (Lorikeet), else the
        /// content deltas (llama-cpp-python streams one token per delta and sends no usage).
        var tokens = 0
    }

    func ask(model: String, question: String, maxTokens: Int) throws -> Timing {
        let body: [String: Any] = ["model": model, "messages": [["role": "user", "content": question]], "temperature": 0,
                                   "max_tokens": maxTokens, "stream": true, "stream_options": ["include_usage": true]]
        let json = try JSONSerialization.data(withJSONObject: body)
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\nConnection: close\r\n\r\n"
        let fd = try connect()
        defer { close(fd) }
        let request = Array(head.utf8) + [UInt8](json)
        let start = Date()
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { throw CLIError("send failed") }
        var timing = Timing()
        var last: Date?
        var reader = EventReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            let now = Date()
            if reader.feed(buffer[0..<n]) > 0 {
                if timing.firstToken == nil { timing.firstToken = now.timeIntervalSince(start) }
                last = now
            }
        }
        guard reader.status == 200 else { throw CLIError("HTTP error: \(String(decoding: reader.bytes.prefix(300), as: UTF8.self))") }
        // Per-token latency of the request (vLLM's TPOT): from the first piece to the last, per piece after the first.
        if let first = timing.firstToken, let last, reader.pieces > 1 {
            timing.gaps = [(last.timeIntervalSince(start) - first) / Double(reader.pieces - 1)]
        }
        guard reader.pieces > 0 || reader.usageTokens != nil else { throw CLIError("no tokens in the stream: \(String(decoding: reader.bytes.suffix(300), as: UTF8.self))") }
        timing.tokens = reader.usageTokens ?? reader.pieces
        return timing
    }

    /// `GET path`; the status, or nil when nothing answers.
    func status(of path: String) -> Int? {
        guard let fd = try? connect() else { return nil }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var reader = EventReader()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            _ = reader.feed(buffer[0..<n])
        }
        return reader.status
    }

    private func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw CLIError("cannot connect to 127.0.0.1:\(port)") }
        return fd
    }

    /// Reads an HTTP response as it arrives: the status, then every complete `data: {json}` line
    /// of a server-sent event stream (content deltas counted, a usage chunk's completion tokens kept).
    struct EventReader {
        private(set) var bytes: [UInt8] = []
        private(set) var status: Int?
        /// Content deltas with text.
        private(set) var pieces = 0
        private(set) var usageTokens: Int?
        private var cursor = 0

        /// Takes the next bytes; returns how many content deltas they completed.
        mutating func feed(_ data: ArraySlice<UInt8>) -> Int {
            bytes += data
            if status == nil, let lineEnd = find([13, 10], from: 0) {
                let line = String(decoding: bytes[0..<lineEnd], as: UTF8.self).split(separator: " ")
                status = line.count > 1 ? Int(line[1]) : 0
            }
            let prefix = Array("data: ".utf8)
            var completed = 0
            while let at = find(prefix, from: cursor) {
                let start = at + prefix.count
                guard let end = bytes[start...].firstIndex(where: { $0 == 10 || $0 == 13 }) else { break }
                cursor = end
                guard let event = (try? JSONSerialization.jsonObject(with: Data(bytes[start..<end]))) as? [String: Any] else { continue }
                if let usage = event["usage"] as? [String: Any], let tokens = usage["completion_tokens"] as? Int { usageTokens = tokens }
                let choices = event["choices"] as? [[String: Any]] ?? []
                for choice in choices {
                    if let delta = choice["delta"] as? [String: Any], let content = delta["content"] as? String, !content.isEmpty {
                        pieces += 1
                        completed += 1
                    }
                }
            }
            return completed
        }

        private func find(_ needle: [UInt8], from: Int) -> Int? {
            guard bytes.count >= needle.count, from <= bytes.count - needle.count else { return nil }
            for i in from...(bytes.count - needle.count) where bytes[i] == needle[0] && bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
            return nil
        }
    }
}
