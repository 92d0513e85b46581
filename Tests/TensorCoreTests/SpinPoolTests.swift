import Synchronization
import TensorCore
import XCTest

/// The spinning pool runs every chunk of every job exactly once, returns only when all are
/// done, runs a nested job on the caller's thread instead of deadlocking, and wakes sleepers.
final class SpinPoolTests: XCTestCase {
    func testEveryChunkOfEveryJobRunsOnceBeforeRunReturns() {
        let pool = SpinPool.shared
        let maxChunks = 13
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: maxChunks)
        defer { counts.deallocate() }
        for job in 0..<20_000 {
            let chunks = 1 + job % maxChunks
            counts.initialize(repeating: 0, count: maxChunks)
            pool.run(chunks: chunks) { chunk in counts[chunk] += 1 + job % 3 }  // each chunk writes only its slot
            for chunk in 0..<maxChunks where counts[chunk] != (chunk < chunks ? 1 + job % 3 : 0) {
                return XCTFail("job \(job) of \(chunks) chunks: chunk \(chunk) ran \(counts[chunk]) units")
            }
        }
    }

    func testNestedJobRunsOnTheCallingThread() {
        let pool = SpinPool.shared
        let inner = Atomic<Int>(0)
        pool.run(chunks: 4) { _ in pool.run(chunks: 3) { _ in inner.add(1, ordering: .relaxed) } }
        XCTAssertEqual(inner.load(ordering: .relaxed), 12)
    }

    /// Workers park after the spin limit and wake for the next job.
    func testWorkersWakeAfterSleeping() {
        let pool = SpinPool.shared
        let done = Atomic<Int>(0)
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.05)
            pool.run(chunks: 8) { _ in done.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(done.load(ordering: .relaxed), 24)
    }
}
