import Architectures
import Foundation
import Lorikeet
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// llama-cpp-python's OpenAI server as a child process, for `bench serve --vs-llamacpp`: the same
/// GGUF, the same thread count, and every adapter the bench serves, exported to a llama.cpp LoRA
/// GGUF by Lorikeet's exporter. Each name requests use is one entry of its `models` list (the
/// base without `lora_path`); it holds one at a time and reloads on a change of name, which is how
/// it serves several adapters. The child is stopped by ``stop()`` and, should the bench die
/// first, by the kernel (parent-death signal).
final class LlamaCppServer: @unchecked Sendable {
    let process: Process
    let client: StreamClient
    let folder: String
    let log: String

    /// `$LORIKEET_PEERS_VENV/bin/python`, else the peers venv in the cache (../shared/peers/setup.sh).
    static var defaultPython: String {
        let environment = ProcessInfo.processInfo.environment
        let venv = environment["LORIKEET_PEERS_VENV"] ?? ((environment["HOME"] ?? "") + "/.cache/lorikeet-peers/venv")
        return venv + "/bin/python"
    }

    private init(process: Process, port: Int, folder: String, log: String) {
        self.process = process
        client = StreamClient(port: port)
        self.folder = folder
        self.log = log
    }

    /// Exports the adapters `names` use, writes the config, starts the server and waits until
    /// `GET /v1/models` answers 200. Nothing is left running or on disk when this throws.
    static func start(model: String, adapters: [(name: String, path: String)], names: [String], baseName: String,
                      python: String, maxTokens: Int, readyWithin seconds: Double = 180) throws -> LlamaCppServer {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw CLIError("--vs-llamacpp needs llama-cpp-python[server] in \(python) (../shared/peers/setup.sh; or set --llamacpp-python / LORIKEET_PEERS_VENV)")
        }
        guard case .gguf(let gguf) = try ModelLocation.resolve(model) else { throw CLIError("--vs-llamacpp needs a .gguf base (llama.cpp reads only GGUF)") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-bench-serve-llamacpp-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var started: LlamaCppServer?
        defer { if started == nil { try? FileManager.default.removeItem(atPath: folder) } }

        let threads = Parallel.threadCount
        var models: [[String: Any]] = []
        for name in names {
            var entry: [String: Any] = ["model": gguf, "model_alias": name, "n_ctx": BenchServe.context, "n_threads": threads,
                                        "n_threads_batch": threads, "n_batch": 512, "verbose": false]
            if name != baseName {
                guard let adapter = adapters.first(where: { $0.name == name }) else { throw CLIError("no adapter named \(name)") }
                let output = folder + "/\(name).gguf"
                let result = try ExportRequest(adapter: adapter.path, format: .gguf, output: output, model: gguf).run()
                print("llama.cpp: \(name) exported to a LoRA GGUF (\(result.tensors) tensors)")
                entry["lora_path"] = output
            }
            models.append(entry)
        }
        let port = try freeLoopbackPort()
        // interrupt_requests off: by default its server ends a running stream early whenever another
        // request waits, which would cut answers short under concurrent clients.
        let config: [String: Any] = ["host": "127.0.0.1", "port": port, "interrupt_requests": false, "models": models]
        let configPath = folder + "/config.json"
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: configPath))

        let log = folder + "/server.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        // PR_SET_PDEATHSIG (1): the kernel sends SIGTERM to the server if the bench dies without stopping it.
        process.arguments = ["-c", "import ctypes, signal, sys, runpy; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
                                 + "sys.argv = ['llama_cpp.server', '--config_file', sys.argv[1]]; runpy.run_module('llama_cpp.server', run_name='__main__')",
                             configPath]
        let output = FileHandle(forWritingAtPath: log)
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let server = LlamaCppServer(process: process, port: port, folder: folder, log: log)
        do {
            try server.waitUntilReady(within: seconds)
        } catch {
            server.stop()
            throw error
        }
        started = server
        print("llama.cpp: llama-cpp-python's server (pid \(process.processIdentifier)) on 127.0.0.1:\(port), \(names.count) model entr\(names.count == 1 ? "y" : "ies"), \(threads) threads, n_ctx \(BenchServe.context)")
        return server
    }

    private func waitUntilReady(within seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard process.isRunning else { throw CLIError("llama-cpp-python's server exited (\(process.terminationStatus)): \(logTail)") }
            if client.status(of: "/v1/models") == 200 { return }
            Thread.sleep(forTimeInterval: 0.25)
        }
        throw CLIError("llama-cpp-python's server did not answer /v1/models within \(Int(seconds)) s: \(logTail)")
    }

    var logTail: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return String(text.suffix(600))
    }

    /// The child's resident memory (VmRSS), nil once it is gone.
    var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib * 1024
    }

    /// SIGTERM, then SIGKILL after 5 s; removes the exported files. Safe to call twice.
    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// A port the kernel picked for a socket bound to loopback and then closed.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CLIError("cannot find a free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
