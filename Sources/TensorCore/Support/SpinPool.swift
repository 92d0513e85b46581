import Foundation
import Synchronization

/// Worker threads that stay awake between jobs, for work items too short to wake a parked
/// thread for: a decode step runs about 200 matrix-vector products of 10–50 µs each, and
/// Dispatch's fork and join cost as much as the product on a 2-core VM (two threads decoded
/// slower than one). Workers spin on a generation counter for a short while after each job,
/// then sleep on a condition variable until the next one.
///
/// One job at a time: a caller that finds the pool busy (a nested or concurrent call) runs
/// its job on its own thread instead.
public final class SpinPool: @unchecked Sendable {
    public static let shared = SpinPool(threads: Parallel.threadCount)

    /// Parts a job is split into: the calling thread plus the workers.
    public let threads: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// The current job; written before `generation` is bumped (release) and read after it is
    /// seen (acquire), so workers always see the job of the generation they woke for.
    private nonisolated(unsafe) var job: ((Int) -> Void)?
    private let sleepLock = NSCondition()
    /// Spins (≈ a few hundred µs) before a worker sleeps.
    private let spinLimit = 200_000

    init(threads: Int) {
        self.threads = max(1, threads)
        for worker in 1..<self.threads {
            let thread = Thread { [unowned self] in self.workerLoop(part: worker) }
            thread.name = "lorikeet-spin-\(worker)"
            thread.start()
        }
    }

    /// Runs `body(part)` for every part in `0..<threads` (part 0 on the calling thread) and
    /// returns when all have finished.
    public func run(_ body: (Int) -> Void) {
        guard threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<threads { body(part) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            pending.store(threads - 1, ordering: .relaxed)
            generation.add(1, ordering: .releasing)
            sleepLock.lock()
            sleepLock.broadcast()
            sleepLock.unlock()
            escapable(0)
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
        }
    }

    private func workerLoop(part: Int) {
        var seen = 0  // the generation counter's start: a job published before this thread ran is still seen
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinLimit { continue }
                sleepLock.lock()
                while generation.load(ordering: .acquiring) == seen { sleepLock.wait() }
                sleepLock.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            job?(part)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
