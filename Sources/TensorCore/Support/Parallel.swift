import Dispatch
import Foundation
import CBLAS

/// The engine's own thread pool policy.
///
/// GEMMs run on OpenBLAS's threads; the engine's loops (attention, norms, elementwise) run
/// on Dispatch's pool. The two never run at the same time (ops execute one after another),
/// and code that calls BLAS from inside a parallel region wraps it in `singleThreadedBLAS`,
/// so the cores are never oversubscribed.
public enum Parallel {
    /// Worker count: `LORIKEET_THREADS` if set, else the number of active cores.
    public static let threadCount: Int = {
        if let text = ProcessInfo.processInfo.environment["LORIKEET_THREADS"],
           let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body` over disjoint chunks covering `0..<count`, on up to `threadCount` threads.
    /// Chunks hold at least `minChunk` items so that tiny loops stay on the calling thread.
    /// `body` must only write memory owned by its chunk: that is what makes the unchecked
    /// Sendable wrapper below sound.
    @inlinable
    public static func forChunks(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(1, minChunk)))
        if chunks == 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { escapable in
            let work = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks, hi = count * (c + 1) / chunks
                if lo < hi { work.value(lo..<hi) }
            }
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, items spread dynamically over the threads
    /// (for uneven work such as causal attention rows).
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if threadCount == 1 || count == 1 { for i in 0..<count { body(i) }; return }
        withoutActuallyEscaping(body) { escapable in
            let work = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: count) { i in work.value(i) }
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread, for BLAS calls made from inside a
    /// parallel region; restores the previous setting.
    @inlinable
    public static func singleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        return try body()
    }

    /// Sets OpenBLAS's thread count to the engine's (called once when the engine starts).
    public static func configureBLAS() {
        openblas_set_num_threads(Int32(threadCount))
    }
}

/// Lets a non-Sendable value cross into Dispatch's worker threads. Only `Parallel` uses it,
/// under the disjoint-writes contract documented there.
@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}
