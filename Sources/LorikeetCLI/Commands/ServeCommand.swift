import ArgumentParser
import Foundation
import Lorikeet
import Serving

/// Serves the base and its adapters behind an OpenAI-compatible HTTP API until SIGTERM or Ctrl-C.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model and its adapters over an OpenAI-compatible HTTP API.",
        discussion: """
        A request's "model" picks the base (by the name /v1/models lists) or an adapter (by the name
        given to --adapter). Listens on loopback unless --host says otherwise. SIGTERM lets running
        streams finish for --grace seconds and refuses new requests.
        Example: lorikeet serve --model smollm2 --adapter foldoc=checkpoints/smollm2-foldoc/best.h5 --port 8080
        """)

    @Option(help: "A .gguf file, a Hugging Face folder or 'smollm2'.") var model = ModelLocation.embeddedName
    @Option(help: "The base's name in requests (default: its file name without extension).") var modelName: String?
    @Option(help: "NAME=PATH: a Lorikeet checkpoint (.h5) or PEFT folder served as model NAME (repeatable).") var adapter: [String] = []
    @Option(help: "Address to listen on (loopback by default; 0.0.0.0 exposes the server to the network).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "Require 'Authorization: Bearer KEY' on /v1/ routes (or set LORIKEET_API_KEY).") var apiKey: String?
    @Option(help: "Sequences decoded at once.") var maxConcurrent = 8
    @Option(help: "Requests waiting for a slot; beyond it: 429 with Retry-After.") var maxQueue = 32
    @Option(help: "Positions per sequence (prompt plus reply), at most the model's context.") var context = 4096
    @Option(help: "The most tokens one request may generate.") var maxTokensCap = 2048
    @Option(help: "The largest request body in bytes.") var maxBodyBytes = 4 << 20
    @Option(help: "Seconds a connection may stay silent before it is closed (a request head begun and unfinished by then gets 408).") var idleTimeout = 30
    @Option(help: "Seconds SIGTERM lets running streams finish.") var grace = 30

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard maxConcurrent >= 1, maxQueue >= 0 else { throw ValidationError("--max-concurrent must be at least 1 and --max-queue at least 0") }
        guard context >= 2, maxTokensCap >= 1, maxBodyBytes >= 1024, idleTimeout >= 1, grace >= 0 else {
            throw ValidationError("--context ≥ 2, --max-tokens-cap ≥ 1, --max-body-bytes ≥ 1024, --idle-timeout ≥ 1, --grace ≥ 0")
        }
        for a in adapter where !a.contains("=") { throw ValidationError("--adapter takes NAME=PATH (got '\(a)')") }
    }

    func run() throws {
        let options = ServeOptions(model: model, modelName: modelName, adapters: adapter.map(ServeOptions.parseAdapter), host: host, port: port,
                                   apiKey: apiKey ?? ProcessInfo.processInfo.environment["LORIKEET_API_KEY"],
                                   limits: EngineLimits(maxConcurrent: maxConcurrent, maxQueued: maxQueue, context: context, maxTokensCap: maxTokensCap),
                                   maxBodyBytes: maxBodyBytes, idleTimeout: idleTimeout, gracePeriod: grace)
        let server = try LorikeetServer(options: options)
        let host = self.host
        let names = server.modelNames
        let outcome = ServeOutcome()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                try await server.run(handleSignals: true) { port in
                    note("serving \(names.joined(separator: ", ")) on http://\(host):\(port)/v1 (Ctrl-C or SIGTERM stops)")
                }
            } catch {
                outcome.set(error)
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw CLIError("the server stopped: \(error)") }
        note("server stopped")
    }
}

/// The server task's failure, handed back to the blocked command.
final class ServeOutcome: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func set(_ error: Error) { lock.withLock { stored = error } }
    var error: Error? { lock.withLock { stored } }
}
