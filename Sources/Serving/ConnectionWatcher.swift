import Foundation
import Hummingbird
import NIOCore

/// Notices that a client closed its side of the connection. The server allows half-closed
/// connections, so a vanished client shows only as an `inputClosed` event (a write to it fails
/// later, but a request still waiting for a slot, or a non-streaming answer being computed,
/// writes nothing): the handler polls this to free the request's slot at the next step.
final class ConnectionWatcher: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    private let lock = NSLock()
    private var closed = false

    var isClosed: Bool { lock.withLock { closed } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { lock.withLock { closed = true } }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { closed = true }
        context.fireChannelInactive()
    }
}

/// The request context: Hummingbird's, plus the connection, to find its watcher.
struct ServeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// This connection's watcher (nil if the pipeline has none).
    func watcher() async -> ConnectionWatcher? {
        try? await channel.pipeline.handler(type: ConnectionWatcher.self).get()
    }
}
