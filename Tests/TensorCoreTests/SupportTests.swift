@testable import TensorCore
import XCTest

final class SupportTests: XCTestCase {
    func testRandomGeneratorIsReproducibleAndRestorable() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        XCTAssertEqual((0..<5).map { _ in a.next() }, (0..<5).map { _ in b.next() })
        let saved = a.state
        let expected = (0..<5).map { _ in a.next() }
        var restored = RandomGenerator(state: saved)
        XCTAssertEqual((0..<5).map { _ in restored.next() }, expected)
        XCTAssertNotEqual(RandomGenerator(seed: 1).state.0, RandomGenerator(seed: 2).state.0)
    }

    func testUniformAndNormalMoments() {
        var rng = RandomGenerator(seed: 3)
        let u = (0..<20_000).map { _ in rng.nextUniform() }
        XCTAssertTrue(u.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertEqual(Double(u.reduce(0, +)) / 20_000, 0.5, accuracy: 0.01)
        let n = (0..<20_000).map { _ in Double(rng.nextNormal()) }
        let mean = n.reduce(0, +) / 20_000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(n.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20_000, 1, accuracy: 0.04)
    }

    func testParallelChunksCoverEveryIndexOnce() {
        for count in [0, 1, 7, 1000, 100_003] {
            let hits = TensorStorage(count: count, zeroed: true)
            Parallel.forChunks(count, minChunk: 3) { r in for i in r { hits.base[i] += 1 } }
            XCTAssertTrue(hits.buffer.allSatisfy { $0 == 1 }, "count \(count)")
        }
    }

    func testStorageIsAlignedForVectorLoads() {
        for count in [1, 3, 1000] {
            XCTAssertEqual(Int(bitPattern: TensorStorage(count: count).base) % 64, 0)
        }
    }

    func testPeakMemoryIsReported() throws {
        let peak = try XCTUnwrap(ProcessMemory.peakResidentBytes)
        let now = try XCTUnwrap(ProcessMemory.residentBytes)
        XCTAssertGreaterThan(now, 1 << 20)
        XCTAssertGreaterThanOrEqual(peak, now / 2, "peak \(peak) vs current \(now)")
    }
}

final class BufferCacheTests: XCTestCase {
    func testLargeBlocksAreReusedAndZeroedOnRequest() {
        // The shared cache may be at capacity after earlier tests (then a freed block goes back
        // to the system, correctly); start from an empty one so the reuse is observable.
        BufferCache.shared.releaseAll()
        let n = 1 << 16  // 256 KiB: cached
        var first: TensorStorage? = TensorStorage(count: n)
        let address = first!.base
        first!.base.update(repeating: 7, count: n)
        first = nil
        let second = TensorStorage(count: n, zeroed: true)
        XCTAssertEqual(second.base, address, "the freed block is handed out again")
        XCTAssertTrue(second.buffer.allSatisfy { $0 == 0 }, "a reused block is zeroed when asked")
    }

    func testCapacityIsRespectedAndReleaseEmptiesTheCache() {
        let cache = BufferCache(capacityBytes: 1 << 20)
        let a = cache.take(bytes: 512 << 10), b = cache.take(bytes: 512 << 10), c = cache.take(bytes: 512 << 10)
        cache.give(a, bytes: 512 << 10); cache.give(b, bytes: 512 << 10); cache.give(c, bytes: 512 << 10)
        XCTAssertEqual(cache.cachedBytes, 1 << 20, "the third block went back to the system")
        cache.releaseAll()
        XCTAssertEqual(cache.cachedBytes, 0)
    }

    /// The counters `bench train` prints to show a steady state maps nothing fresh.
    func testCountersSayWhereEachBlockCameFromAndWentTo() {
        let cache = BufferCache(capacityBytes: 1 << 20)
        let size = 512 << 10
        let a = cache.take(bytes: size), b = cache.take(bytes: size), c = cache.take(bytes: size)
        let small = cache.take(bytes: 1024)
        XCTAssertEqual(cache.counters, BufferCache.Counters(mapped: 3, mappedBytes: 3 * size, small: 1))
        cache.give(a, bytes: size); cache.give(b, bytes: size); cache.give(c, bytes: size)  // the third does not fit
        cache.give(small, bytes: 1024)
        let before = cache.counters
        cache.give(cache.take(bytes: size), bytes: size)
        XCTAssertEqual(cache.counters - before, BufferCache.Counters(reused: 1), "a cached size is served without mapping")
        XCTAssertEqual(before.unmapped, 1)
        cache.releaseAll()
        XCTAssertEqual(cache.counters.unmapped, 3)
    }

    func testSmallBlocksBypassTheCache() {
        let cache = BufferCache(capacityBytes: 1 << 20)
        cache.give(cache.take(bytes: 1024), bytes: 1024)
        XCTAssertEqual(cache.cachedBytes, 0)
    }
}
