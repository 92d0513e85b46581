import Foundation
import CBLAS

/// The engine's thread policy: one pool owns the cores.
///
/// Everything parallel runs on `SpinPool` (GEMMs cut into blocks, attention, norms,
/// elementwise loops), and OpenBLAS runs single-threaded inside its jobs. With OpenBLAS's
/// own threads and a second pool both waiting in `sched_yield` between their jobs, a 2-core
/// training step spent ~15% of its time switching between spinning threads.
public enum Parallel {
    /// Worker count: `LORIKEET_THREADS` if set, else the number of active cores divided among
    /// the processes `mpirun` started on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`), so N
    /// ranks on one host do not each spin a pool over every core.
    public static let threadCount: Int = {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["LORIKEET_THREADS"], let n = Int(text), n > 0 { return n }
        let local = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) }.map { max(1, $0) } ?? 1
        return max(1, ProcessInfo.processInfo.activeProcessorCount / local)
    }()

    /// Runs `body` over disjoint chunks covering `0..<count`, on up to `threadCount` threads.
    /// Chunks hold at least `minChunk` items so that tiny loops stay on the calling thread.
    /// `body` must only write memory owned by its chunk.
    @inlinable
    public static func forChunks(_ count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(1, minChunk)))
        if chunks == 1 { body(0..<count); return }
        SpinPool.shared.run(chunks: chunks) { c in
            let lo = count * c / chunks, hi = count * (c + 1) / chunks
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`, items spread dynamically over the threads
    /// (for uneven work such as causal attention rows).
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if threadCount == 1 || count == 1 { for i in 0..<count { body(i) }; return }
        SpinPool.shared.run(chunks: count, body)
    }

    /// OpenBLAS's thread count, set to one when the pool starts (`SpinPool.init`, and
    /// `configureBLAS` at launch): BLAS calls made inside the pool's jobs never oversubscribe,
    /// and products get their parallelism from the pool instead.
    public static let blasThreads: Int32 = {
        openblas_set_num_threads(1)
        return 1
    }()

    /// Fixes OpenBLAS's threading before the first product (called once when the CLI starts).
    public static func configureBLAS() {
        _ = blasThreads
    }
}
