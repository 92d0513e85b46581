import Foundation
import Lorikeet

/// What a request's generation reports, in order: `started` (or `failed`), text pieces, `finished`.
enum JobEvent: Sendable {
    /// The prompt fits: its token count and the reply's token budget.
    case started(promptTokens: Int, maxTokens: Int)
    case text(String)
    case finished(GenerationSummary)
    /// Refused before any text (context length, a template error).
    case failed(APIError)
}

/// One request's generation: created by a handler, stepped only by the engine's thread.
final class Job: @unchecked Sendable {
    let entry: ModelEntry
    let request: CompletionRequest
    /// Events for the handler that submitted it.
    let events: AsyncStream<JobEvent>
    let continuation: AsyncStream<JobEvent>.Continuation
    private let cancelLock = NSLock()
    private var cancelledFlag = false
    /// Engine-thread state: the sequence owns its KV cache, freed with the job.
    var sequence: BatchedSequence?
    var done = false
    var wasCancelled = false

    init(entry: ModelEntry, request: CompletionRequest) {
        self.entry = entry
        self.request = request
        (events, continuation) = AsyncStream.makeStream(of: JobEvent.self, bufferingPolicy: .unbounded)
        continuation.onTermination = { [weak self] _ in self?.cancel() }
    }

    /// Set by the engine once the job has ended (its handler stops watching the connection).
    var isFinished: Bool { cancelLock.withLock { finishedFlag } }
    func markFinished() { cancelLock.withLock { finishedFlag = true } }
    private var finishedFlag = false

    /// The client went away: the engine drops the sequence at its next step.
    func cancel() { cancelLock.withLock { cancelledFlag = true } }
    var isCancelled: Bool { cancelLock.withLock { cancelledFlag } }
}

/// Limits of the engine.
public struct EngineLimits: Sendable, Equatable {
    /// Sequences decoded at once; more wait in the queue.
    public var maxConcurrent: Int
    /// Requests waiting for a slot; beyond it requests get 429 with Retry-After.
    public var maxQueued: Int
    /// Positions a sequence's KV cache may hold (prompt plus reply).
    public var context: Int
    /// The most tokens one reply may ask for.
    public var maxTokensCap: Int

    public init(maxConcurrent: Int = 8, maxQueued: Int = 32, context: Int = 2048, maxTokensCap: Int = 1024) {
        self.maxConcurrent = maxConcurrent
        self.maxQueued = maxQueued
        self.context = context
        self.maxTokensCap = maxTokensCap
    }
}

/// Continuous batching on one thread of its own: between steps, queued requests join (up to
/// `maxConcurrent`) and finished or abandoned ones leave, freeing their KV caches; each step
/// advances every running sequence by one token in ONE batched forward over the shared base
/// (each row adding its own adapter's update), with new prompts prefilled in chunks inside the
/// same steps so running streams keep flowing. Every model call happens on this thread: a
/// `BaseModel` and its tokenizer are not safe from two threads at once.
final class GenerationEngine: @unchecked Sendable {
    let limits: EngineLimits
    private let condition = NSCondition()
    private var pending: [Job] = []
    private var active: [Job] = []
    private var accepting = true
    private var stopped = false
    private var thread: Thread?
    /// Requests that ran to their end, and those dropped because their client went away.
    private var counts = (completed: 0, cancelled: 0)

    init(limits: EngineLimits) {
        self.limits = limits
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "lorikeet-serve-engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Queues `job`, or refuses it: 429 when every slot and the queue are taken, 503 while
    /// shutting down.
    func submit(_ job: Job) throws(APIError) {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else {
            throw APIError(status: 503, message: "the server is shutting down; it takes no new requests", type: "server_error",
                           code: "shutting_down", retryAfter: 5)
        }
        guard active.count + pending.count < limits.maxConcurrent + limits.maxQueued else {
            throw APIError(status: 429, message: "the server is busy: \(limits.maxConcurrent) sequences are running and \(limits.maxQueued) waiting; try again shortly",
                           type: "rate_limit_error", code: "server_busy", retryAfter: 1)
        }
        pending.append(job)
        condition.signal()
    }

    /// Running and waiting sequences.
    var load: (active: Int, queued: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (active.count, pending.count)
    }

    /// Requests finished since start: whole, and cut because their client went away.
    var finished: (completed: Int, cancelled: Int) {
        condition.lock()
        defer { condition.unlock() }
        return counts
    }

    /// Refuses new requests from now on (SIGTERM); running ones go on.
    func stopAccepting() {
        condition.lock()
        accepting = false
        condition.unlock()
    }

    /// Cancels every request still running or queued, and ends the thread once they are dropped.
    func stop() {
        condition.lock()
        accepting = false
        for job in active + pending { job.cancel() }
        stopped = true
        condition.signal()
        condition.unlock()
    }

    /// Prompt tokens prefilled per step across all joining sequences: small enough that a long
    /// prompt delays running streams by a bounded amount, large enough that typical chat
    /// prompts (tens of tokens) go in one step, as `generate` prefills them.
    static let prefillBudget = 256

    private func loop() {
        while true {
            condition.lock()
            while active.count < limits.maxConcurrent, !pending.isEmpty { active.append(pending.removeFirst()) }
            while active.isEmpty, pending.isEmpty, !stopped { condition.wait() }
            if active.isEmpty, pending.isEmpty, stopped { condition.unlock(); return }
            if active.isEmpty { condition.unlock(); continue }
            let turn = active
            condition.unlock()

            for job in turn where !job.done && job.sequence == nil { admit(job) }
            for job in turn where !job.done && job.isCancelled {
                job.sequence?.stop()
                job.wasCancelled = true
                finish(job)
            }
            let running = turn.filter { !$0.done && $0.sequence != nil }
            let sequences = running.compactMap(\.sequence)
            if !sequences.isEmpty {
                let events = BatchedDecoder.step(sequences, prefillBudget: Self.prefillBudget)
                for (job, jobEvents) in zip(running, events) {
                    for event in jobEvents {
                        switch event {
                        case .text(let piece): job.continuation.yield(.text(piece))
                        case .finished(let summary):
                            job.continuation.yield(.finished(summary))
                            finish(job)
                        }
                    }
                }
            }

            condition.lock()
            for job in active where job.done {
                if job.wasCancelled { counts.cancelled += 1 } else { counts.completed += 1 }
            }
            active.removeAll { $0.done }
            condition.unlock()
        }
    }

    private func finish(_ job: Job) {
        job.done = true
        job.markFinished()
        job.sequence = nil  // frees the sequence's KV cache
        job.continuation.finish()
    }

    /// Checks the request against the limits and the context, and makes its sequence (which
    /// joins the next step); refuses it with an OpenAI-shaped error otherwise.
    private func admit(_ job: Job) {
        let request = job.request
        let entry = job.entry
        let base = entry.base
        do {
            let text: String
            let parseSpecial: Bool
            switch request.prompt {
            case .chat(let messages):
                text = try base.renderPrompt(chat: messages)
                parseSpecial = true
            case .text(let raw):
                text = raw
                parseSpecial = false
            }
            let ids: [Int32]
            do { ids = try base.tokenizer.encode(text, parseSpecial: parseSpecial) } catch { throw LorikeetError.model(error.description) }
            guard !ids.isEmpty else { throw LorikeetError.invalidRequest("the prompt encodes to no tokens") }
            let promptTokens = ids.count
            let context = min(limits.context, base.config.maxPositions)
            if let asked = request.maxTokens, asked > limits.maxTokensCap {
                throw APIError.invalid("'max_tokens' is \(asked); this server allows at most \(limits.maxTokensCap) per request",
                                       param: "max_tokens", code: "max_tokens_exceeded")
            }
            let room = context - promptTokens
            if let asked = request.maxTokens, asked > room {
                throw APIError.invalid("This model's maximum context length is \(context) tokens. However, you requested \(promptTokens + asked) tokens (\(promptTokens) in the prompt, \(asked) in the completion). Please reduce the prompt or the completion length.",
                                       param: request.isChat ? "messages" : "prompt", code: "context_length_exceeded")
            }
            guard room > 0 else {
                throw APIError.invalid("This model's maximum context length is \(context) tokens. However, the prompt has \(promptTokens) tokens, leaving none for the completion. Please reduce the prompt.",
                                       param: request.isChat ? "messages" : "prompt", code: "context_length_exceeded")
            }
            let maxTokens = request.maxTokens ?? min(limits.maxTokensCap, room)
            let options = GenerationOptions(maxTokens: maxTokens, sampling: request.sampling, stopStrings: request.stop)
            job.sequence = try BatchedSequence(prompt: ids, base: base, decoder: entry.decoder,
                                               adapter: entry.adapter, context: limits.context, options: options)
            job.continuation.yield(.started(promptTokens: promptTokens, maxTokens: maxTokens))
        } catch let error as APIError {
            job.continuation.yield(.failed(error))
            finish(job)
        } catch {
            job.continuation.yield(.failed(.invalid("\(error)")))
            finish(job)
        }
    }
}

extension CompletionRequest {
    var isChat: Bool { if case .chat = prompt { return true } else { return false } }
}
