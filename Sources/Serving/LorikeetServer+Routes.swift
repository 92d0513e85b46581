import Foundation
import Hummingbird
import Lorikeet
import NIOCore

extension LorikeetServer {
    func makeRouter() -> Router<ServeRequestContext> {
        let router = Router(context: ServeRequestContext.self)
        router.add(middleware: ErrorMiddleware(server: self))
        router.get("/health") { [self] _, _ -> Response in
            let load = engine.load, finished = engine.finished
            return Self.json(["status": isShuttingDown ? "shutting_down" : "ok", "models": registry.names.count,
                              "running": load.active, "queued": load.queued, "completed": finished.completed,
                              "cancelled": finished.cancelled])
        }
        router.get("/v1/models") { [self] _, _ -> Response in
            Self.json(["object": "list", "data": registry.all.map { OpenAIResponses.model($0, base: registry.baseName) }])
        }
        router.get("/v1/models/{id}") { [self] _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard let entry = registry.entry(id) else { throw APIError.unknownModel(id, known: registry.names) }
            return Self.json(OpenAIResponses.model(entry, base: registry.baseName))
        }
        router.post("/v1/chat/completions") { [self] request, context -> Response in try await complete(request, context: context, chat: true) }
        router.post("/v1/completions") { [self] request, context -> Response in try await complete(request, context: context, chat: false) }
        router.post("/v1/adapters") { [self] request, _ -> Response in try await addAdapter(request) }
        router.delete("/v1/adapters/{name}") { [self] _, context -> Response in
            let name = context.parameters.get("name") ?? ""
            try registry.removeAdapter(name)
            return Self.json(["id": name, "object": "model", "deleted": true])
        }
        return router
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSON.encode(object))))
    }

    /// The body, refused with 413 past the limit before more of it is read.
    func body(of request: Request) async throws(APIError) -> [UInt8] {
        let limit = options.maxBodyBytes
        let tooLarge = APIError(status: 413, message: "the request body is larger than this server's limit of \(limit) bytes",
                                code: "request_too_large")
        if let declared = request.headers[.contentLength] {
            guard let length = Int(declared), length >= 0 else { throw .invalid("Content-Length '\(declared.prefix(40))' is not a byte count") }
            guard length <= limit else { throw tooLarge }
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw .invalid("the request body could not be read (\(error))")
        }
    }

    /// `POST /v1/adapters {"name": …, "path": …}`: loads an adapter while serving.
    func addAdapter(_ request: Request) async throws -> Response {
        let object = try CompletionRequest.object(try await body(of: request))
        if let unknown = object.keys.sorted().first(where: { $0 != "name" && $0 != "path" }) {
            throw APIError.invalid("Unrecognized request argument supplied: \(unknown)", param: unknown, code: "unknown_field")
        }
        let fields = FieldReader(object: object)
        guard let path = try fields.string("path") else { throw APIError.invalid("you must provide the adapter's 'path'", param: "path") }
        let name = try fields.string("name") ?? ServeOptions.parseAdapter(path).name
        try registry.checkNewName(name)
        let registry = self.registry
        // Loading reads the base again: off the cooperative pool and off the engine's thread.
        let entry: ModelEntry = try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do { continuation.resume(returning: try registry.addAdapter(name: name, path: path)) } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
        return Self.json(OpenAIResponses.model(entry, base: registry.baseName), status: .created)
    }

    /// A chat or text completion: admitted by the engine (or refused before any byte of an
    /// answer), then answered whole or streamed.
    func complete(_ request: Request, context: ServeRequestContext, chat: Bool) async throws -> Response {
        let parsed = try CompletionRequest(body: try await body(of: request), chat: chat)
        guard let entry = registry.entry(parsed.model) else { throw APIError.unknownModel(parsed.model, known: registry.names) }
        let job = Job(entry: entry, request: parsed)
        try engine.submit(job)
        // Until the job ends: a client that closes its side frees the slot at the next step.
        if let watcher = await context.watcher() {
            Task.detached {
                while !job.isFinished {
                    if watcher.isClosed { job.cancel(); break }
                    try? await Task.sleep(nanoseconds: 100_000_000)
                }
            }
        }
        let reader = EventReader(job: job)
        // The first event says whether the prompt fits.
        switch await reader.next() {
        case .started?: break
        case .failed(let error)?: throw error
        default: throw APIError(status: 503, message: "the request was cancelled before it started", type: "server_error")
        }
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        let model = parsed.model
        if !parsed.stream {
            let summary = await reader.summary()
            guard let summary else { throw APIError(status: 499, message: "the client closed the connection", type: "server_error") }
            return Self.json(OpenAIResponses.completion(id: id, created: created, model: model, chat: chat, summary: summary))
        }
        let usage = parsed.streamUsage
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                if chat { try await writer.write(ByteBuffer(bytes: OpenAIResponses.event(OpenAIResponses.chunk(id: id, created: created, model: model, chat: chat, role: true)))) }
                while let event = await reader.next() {
                    switch event {
                    case .text(let piece):
                        try await writer.write(ByteBuffer(bytes: OpenAIResponses.event(OpenAIResponses.chunk(id: id, created: created, model: model, chat: chat, text: piece))))
                    case .finished(let summary):
                        let reason = OpenAIResponses.finishReason(summary.finish)
                        var bytes = OpenAIResponses.event(OpenAIResponses.chunk(id: id, created: created, model: model, chat: chat, finish: reason))
                        if usage { bytes += OpenAIResponses.event(OpenAIResponses.usageChunk(id: id, created: created, model: model, chat: chat, summary: summary)) }
                        bytes += OpenAIResponses.done
                        try await writer.write(ByteBuffer(bytes: bytes))
                    case .started, .failed: break
                    }
                }
                try await writer.finish(nil)
            } catch {
                job.cancel()  // the client went away: its slot is freed at the engine's next step
                throw error
            }
        })
    }
}

/// A job's events for the handler (and later the response body) that consume them.
final class EventReader: @unchecked Sendable {
    private var iterator: AsyncStream<JobEvent>.AsyncIterator
    let job: Job

    init(job: Job) {
        self.job = job
        iterator = job.events.makeAsyncIterator()
    }

    func next() async -> JobEvent? { await iterator.next() }

    /// Waits for the end; nil when the generation was cut without a summary.
    func summary() async -> GenerationSummary? {
        while let event = await next() {
            if case .finished(let summary) = event { return summary }
        }
        return nil
    }
}

/// Turns every error into OpenAI's error body (never Hummingbird's empty 500), and checks the
/// API key on `/v1/` routes.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = ServeRequestContext
    let server: LorikeetServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            if let key = server.options.apiKey, request.uri.path.hasPrefix("/v1/") {
                let presented = request.headers[.authorization] ?? ""
                let token = presented.hasPrefix("Bearer ") ? String(presented.dropFirst(7)) : ""
                guard constantTimeEquals(token, key) else {
                    throw APIError(status: 401, message: "Incorrect API key provided: send 'Authorization: Bearer <key>'",
                                   type: "authentication_error", code: "invalid_api_key")
                }
            }
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let status = Int(error.status.code)
            let message = status == 404 ? "no route \(request.method) \(request.uri.path); see GET /v1/models, POST /v1/chat/completions, POST /v1/completions"
                : status == 405 ? "\(request.method) is not allowed on \(request.uri.path)" : (error.body ?? "\(error.status)")
            return APIError(status: status, message: message, type: status == 404 ? "not_found_error" : "invalid_request_error").response
        } catch is NIOTooManyBytesError {
            return APIError(status: 413, message: "the request body is too large", code: "request_too_large").response
        } catch {
            return APIError(status: 500, message: "internal error: \(error)", type: "server_error").response
        }
    }
}
