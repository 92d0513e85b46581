import Synchronization
import TensorCore
import XCTest

/// The spinning pool runs every part of every job exactly once, returns only when all are done,
/// and runs a nested job on the caller's thread instead of deadlocking.
final class SpinPoolTests: XCTestCase {
    func testEveryPartOfEveryJobRunsOnceBeforeRunReturns() {
        let pool = SpinPool.shared
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: pool.threads)
        defer { counts.deallocate() }
        for job in 0..<20_000 {
            counts.initialize(repeating: 0, count: pool.threads)
            pool.run { part in counts[part] += 1 + job % 3 }  // each part writes only its slot
            for part in 0..<pool.threads where counts[part] != 1 + job % 3 {
                return XCTFail("job \(job): part \(part) ran \(counts[part]) units, expected \(1 + job % 3)")
            }
        }
    }

    func testNestedJobRunsOnTheCallingThread() {
        let pool = SpinPool.shared
        let inner = Atomic<Int>(0)
        pool.run { _ in pool.run { _ in inner.add(1, ordering: .relaxed) } }
        XCTAssertEqual(inner.load(ordering: .relaxed), pool.threads * pool.threads)
    }

    /// Parks after the spin limit and wakes for the next job.
    func testWorkersWakeAfterSleeping() {
        let pool = SpinPool.shared
        let done = Atomic<Int>(0)
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.05)
            pool.run { _ in done.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(done.load(ordering: .relaxed), 3 * pool.threads)
    }
}
