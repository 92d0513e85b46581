import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Hummingbird's HTTP/1 channel with a guard on the request head, so the two refusals NIO makes
/// before any route runs still reach the client as OpenAI-shaped JSON errors: headers over the
/// decoder's limits get 431 (other unparsable heads 400) instead of a bare 400 with no body, and a
/// client that has started a head but not finished it within the header timeout (slow-loris) gets
/// 408 instead of a silent close.
///
/// Hummingbird offers no hook there (its handler writes the bare 400 itself and its idle timer
/// closes without a word), so the guard sits in the pipeline it builds: a byte watcher in front of
/// the HTTP decoder notes that a head has begun, and a handler right after the decoder catches its
/// parse errors, counts heads and finished responses, and runs the header timer.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let headerTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let headerTimeout = headerTimeout, limits = inner.configuration.httpDecoder
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let state = RequestHeadState()
            try operations.addHandler(RequestBytesWatcher(state: state), position: .first)
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(RequestHeadGuard(state: state, headerTimeout: headerTimeout, limits: limits), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// What the two handlers of one connection share (both run on its event loop).
final class RequestHeadState {
    /// Bytes arrived since the last request head or request end was decoded: a head has begun.
    var headBegun = false
    /// Request heads and request ends decoded, and responses finished: all equal while the server
    /// waits for a head (a response may end before its request's body does, e.g. a 413).
    var heads = 0, requestEnds = 0, responses = 0
    var awaitingHead: Bool { heads == responses && heads == requestEnds }
}

/// In front of the HTTP decoder: notes every arrival of bytes.
final class RequestBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let state: RequestHeadState

    init(state: RequestHeadState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytes > 0 { state.headBegun = true }
        context.fireChannelRead(data)
    }
}

/// Right after the HTTP decoder: answers the decoder's refusal of a head, and a head not finished
/// in time, with an OpenAI error body and closes the connection. Errors while a request is being
/// served go on to Hummingbird as before.
final class RequestHeadGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let state: RequestHeadState
    let headerTimeout: TimeAmount
    /// The decoder's limits, named in the 431's message.
    let limits: HTTP1Channel.Configuration.DecoderConfiguration
    /// When the server began waiting for the current head: the connection's start, or the end of
    /// the last request or response, whichever came later.
    private var waitingSince = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var answered = false

    init(state: RequestHeadState, headerTimeout: TimeAmount, limits: HTTP1Channel.Configuration.DecoderConfiguration) {
        self.state = state
        self.headerTimeout = headerTimeout
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startWaiting(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil { startWaiting(context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            state.heads += 1
            state.headBegun = false
        case .end:
            state.requestEnds += 1
            state.headBegun = false
            if state.awaitingHead { startWaiting(context) }
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            state.responses += 1
            if state.awaitingHead { startWaiting(context) }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Once answered, the decoder's complaints about the bytes still arriving are moot: the connection is closing.
        if answered { return }
        guard let parse = error as? HTTPParserError, state.awaitingHead else {
            context.fireErrorCaught(error)
            return
        }
        if parse == .headerOverflow {
            answer(context, APIError(status: 431, message: "The request's headers are larger than this server accepts (at most \(limits.maxHeaderFieldCount) fields, \(limits.maxHeaderFieldSize) bytes each, \(limits.maxHeaderListSize) bytes in all).",
                                     code: "request_header_fields_too_large"))
        } else {
            answer(context, APIError(status: 400, message: "The request is not valid HTTP/1.1: \(parse).", code: "bad_http_request"))
        }
    }

    /// (Re)starts the header timer from now.
    private func startWaiting(_ context: ChannelHandlerContext) {
        waitingSince = .now()
        timer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(deadline: waitingSince + headerTimeout) { [self] in
            timer = nil
            timeUp(context)
        }
    }

    /// The header timeout passed: a begun head is answered with 408, a silent connection closed.
    private func timeUp(_ context: ChannelHandlerContext) {
        guard state.awaitingHead, !answered, context.channel.isActive else { return }
        if state.headBegun {
            answer(context, APIError(status: 408, message: "The request's headers did not arrive within \(headerTimeout.nanoseconds / 1_000_000_000) s.",
                                     code: "request_timeout"))
        } else {
            context.close(promise: nil)
        }
    }

    /// Writes `error` as a complete response with `Connection: close`, then closes.
    private func answer(_ context: ChannelHandlerContext, _ error: APIError) {
        answered = true
        timer?.cancel()
        timer = nil
        let body = JSON.encode(error.body)
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(body.count)), ("Connection", "close")])
        if let retryAfter = error.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: error.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
