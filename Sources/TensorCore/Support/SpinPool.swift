import Foundation
import Synchronization

/// Worker threads that stay awake between jobs, for work items too short to wake a parked
/// thread for: a decode step runs about 200 matrix-vector products of 10–50 µs each, and
/// Dispatch's fork and join cost as much as the product on a 2-core VM (two threads decoded
/// slower than one). Workers spin on the job ticket for a short while after each job, then
/// sleep on a condition variable until the next one.
///
/// A job is cut into chunks that the caller and the workers claim one at a time, so a worker
/// the OS has not scheduled simply claims nothing and the caller does the work: on a busy
/// machine the pool degrades to one thread instead of waiting on a sleeping one.
///
/// One job at a time: a caller that finds the pool busy (a nested or concurrent call) runs
/// its job on its own thread instead.
public final class SpinPool: @unchecked Sendable {
    public static let shared = SpinPool(threads: Parallel.threadCount)

    /// Threads that may work on a job: the caller and the workers.
    public let threads: Int
    /// generation (bits 40…63) | chunk count (bits 20…39) | next chunk (bits 0…19): one word,
    /// so a claim checks all three at once and a stale worker can never claim a chunk of a
    /// later job by mistake.
    private let ticket = Atomic<UInt64>(0)
    private let completed = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// The current job, written before its ticket is published (release) and read only after
    /// a chunk of it is claimed (acquire): a claimed chunk keeps the job from finishing.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private nonisolated(unsafe) var generation: UInt64 = 0
    private let sleepLock = NSCondition()
    /// Spins (≈ a few hundred µs) before a worker sleeps.
    private let spinLimit = 200_000
    static let maxChunks = (1 << 20) - 1

    init(threads: Int) {
        _ = Parallel.blasThreads  // OpenBLAS runs single-threaded inside the pool's jobs
        self.threads = max(1, threads)
        for worker in 1..<self.threads {
            let thread = Thread { [unowned self] in self.workerLoop() }
            thread.name = "lorikeet-spin-\(worker)"
            thread.start()
        }
    }

    /// Runs `body(chunk)` for every chunk in `0..<chunks`, spread over the threads that are
    /// free to take them, and returns when all have finished.
    public func run(chunks: Int, _ body: (Int) -> Void) {
        guard chunks > 0 else { return }
        guard threads > 1, chunks > 1, chunks <= Self.maxChunks,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for chunk in 0..<chunks { body(chunk) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            completed.store(0, ordering: .relaxed)
            generation = generation == 0xFF_FFFF ? 1 : generation + 1  // 24 bits, never 0 (a new worker's "seen")
            let g = generation
            ticket.store(g << 40 | UInt64(chunks) << 20, ordering: .releasing)
            sleepLock.lock()
            sleepLock.broadcast()
            sleepLock.unlock()
            work(generation: g)
            var spins = 0
            while completed.load(ordering: .acquiring) < chunks {
                spins += 1
                if spins > 2_000 { sched_yield() }  // a worker mid-chunk may be off its core
            }
            job = nil
        }
    }

    /// Claims and runs chunks of generation `g` until none are left.
    private func work(generation g: UInt64) {
        while true {
            var current = ticket.load(ordering: .acquiring)
            while true {
                let count = (current >> 20) & 0xF_FFFF, next = current & 0xF_FFFF
                guard current >> 40 == g, next < count else { return }
                let (exchanged, original) = ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { break }
                current = original
            }
            job?(Int(current & 0xF_FFFF))
            completed.add(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen: UInt64 = 0  // the first generation is 1: a job published before this thread ran is still seen
        while true {
            var spins = 0
            while ticket.load(ordering: .acquiring) >> 40 == seen {
                spins += 1
                if spins < spinLimit {
                    if spins % 1_000 == 0 { sched_yield() }  // give way to a thread that has work
                    continue
                }
                sleepLock.lock()
                while ticket.load(ordering: .acquiring) >> 40 == seen { sleepLock.wait() }
                sleepLock.unlock()
            }
            seen = ticket.load(ordering: .acquiring) >> 40
            work(generation: seen)
        }
    }
}
