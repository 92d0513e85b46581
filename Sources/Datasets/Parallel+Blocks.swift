import TensorCore

extension Parallel {
    /// Runs `body` over blocks of `block` items covering `0..<count`, dealt round-robin to
    /// `threads` workers (1: the calling thread alone), so uneven records even out while the
    /// thread count stays what the caller asked for (benchmarks compare 1 against N).
    /// `body` must only write memory owned by its block.
    static func forBlocks(_ count: Int, block: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let blocks = (count + block - 1) / block
        let workers = max(1, min(threads, blocks))
        func work(_ w: Int) {
            for b in stride(from: w, to: blocks, by: workers) { body(b * block..<min((b + 1) * block, count)) }
        }
        if workers == 1 { work(0) } else { forEach(workers, work) }
    }
}
