import Foundation
import Hummingbird
import HummingbirdCore
import Lorikeet
import NIOCore

/// The OpenAI-compatible server: the base once, any number of adapters by name, one decoding
/// engine that interleaves every request's steps.
///
/// `POST /v1/chat/completions` and `/v1/completions` (streaming as server-sent events),
/// `GET /v1/models`, `GET /health`, and `POST`/`DELETE /v1/adapters` to load and unload adapters
/// while serving. Every refusal is a 4xx with OpenAI's error body.
public final class LorikeetServer: @unchecked Sendable {
    public let options: ServeOptions
    let registry: ModelRegistry
    let engine: GenerationEngine
    private let stateLock = NSLock()
    private var serverTask: Task<Void, Error>?
    private var shuttingDown = false

    /// Loads the base and the adapters named in `options` (slow: each adapter reads the base again).
    public init(options: ServeOptions) throws(LorikeetError) {
        self.options = options
        let base = try BaseModel(loading: options.model)
        let name = options.modelName ?? ((base.path as NSString).lastPathComponent as NSString).deletingPathExtension
        registry = ModelRegistry(base: base, name: name)
        var limits = options.limits
        limits.context = max(1, min(limits.context, base.config.maxPositions))
        engine = GenerationEngine(limits: limits)
        for (adapterName, path) in options.adapters {
            do { try registry.addAdapter(name: adapterName, path: path) } catch { throw .invalidRequest("--adapter \(adapterName)=\(path): \(error.message)") }
        }
    }

    /// The names requests can choose: the base first, then the adapters.
    public var modelNames: [String] { registry.names }

    /// The base's name.
    public var baseName: String { registry.baseName }

    /// Base decoders in memory: one per base representation the loaded adapters use.
    public var baseDecoderCount: Int { registry.decoderCount }

    /// Serves until ``shutdown()`` (or SIGTERM/SIGINT when `handleSignals`), calling `onListening`
    /// with the bound port once connections are accepted.
    public func run(handleSignals: Bool = false, onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        engine.start()
        defer { engine.stop() }
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10,
                                                                        maxHeaderFieldCount: 100)
        // Hummingbird's idle timer closes silently; the head guard's runs the same time from the same
        // moments, so it gets one second more and a slow-loris client hears 408 from the guard first.
        let http = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionWatcher()], idleTimeout: .seconds(Int64(options.idleTimeout) + 1),
                                              httpDecoderConfiguration: decoder)
        let headerTimeout = TimeAmount.seconds(Int64(options.idleTimeout))
        let server = HTTPServerBuilder { responder in
            GuardedHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: http), headerTimeout: headerTimeout)
        }
        let app = Application(router: makeRouter(), server: server,
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "lorikeet"),
                              onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) })
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        stateLock.withLock { serverTask = task }
        var sources: [DispatchSourceSignal] = []
        if handleSignals {
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { [weak self] in self?.shutdown() }
                source.resume()
                sources.append(source)
            }
        }
        defer { sources.forEach { $0.cancel() } }
        try await withTaskCancellationHandler {
            do { try await task.value } catch is CancellationError {}
        } onCancel: {
            task.cancel()
        }
    }

    /// Stops taking requests (new ones get 503), lets running ones finish for up to the grace
    /// period, then cuts what is left and stops the server.
    public func shutdown() {
        let first = stateLock.withLock { () -> Bool in
            defer { shuttingDown = true }
            return !shuttingDown
        }
        guard first else { return }
        engine.stopAccepting()
        let grace = Double(options.gracePeriod)
        Thread.detachNewThread { [self] in
            let deadline = Date().addingTimeInterval(grace)
            while Date() < deadline {
                let load = engine.load
                if load.active == 0 && load.queued == 0 { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
            engine.stop()
            // Let the last bytes of finished streams go out.
            Thread.sleep(forTimeInterval: 0.2)
            stateLock.withLock { serverTask }?.cancel()
        }
    }

    var isShuttingDown: Bool { stateLock.withLock { shuttingDown } }
}
