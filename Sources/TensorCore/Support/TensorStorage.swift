import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one contiguous, 64-byte-aligned block of Float32 (a cache line and an AVX-512
/// vector), so kernels can use aligned loads and BLAS gets its preferred alignment.
///
/// Tensors never mutate storage after the op that produced it returns, so several tensors
/// (a tensor and its reshaped views) can share one storage safely. The exceptions are
/// explicit: optimizers update parameters in place through `withUnsafeMutableBufferPointer`.
///
/// Large blocks are recycled through `BufferCache`: a training step allocates the same sizes
/// every time, and reusing last step's pages avoids both malloc and the page faults of fresh
/// memory (which cost as much as a GEMM's worth of time on some virtual machines).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>
    let bytes: Int

    /// Allocates `count` floats, zero-filled when `zeroed` (gradients, accumulators).
    public init(count: Int, zeroed: Bool = false) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        bytes = BufferCache.roundedSize(max(count, 1) * MemoryLayout<Float>.stride)
        base = BufferCache.shared.take(bytes: bytes).bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { base.initialize(repeating: 0, count: count) }
    }

    deinit { BufferCache.shared.give(UnsafeMutableRawPointer(base), bytes: bytes) }

    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }
}

/// A bounded cache of freed large blocks, keyed by size.
public final class BufferCache: Sendable {
    public static let shared = BufferCache(capacityBytes: {
        if let text = getenv("LORIKEET_BUFFER_CACHE_MB").map({ String(cString: $0) }), let mb = Int(text), mb >= 0 { return mb << 20 }
        return 256 << 20
    }())

    /// Blocks below this size go straight to malloc (its own bins serve them well).
    static let minimumCachedBytes = 64 << 10

    /// Free blocks by size, as addresses (raw pointers are not Sendable across the lock).
    struct State {
        var free: [Int: [UInt]] = [:]
        var cachedBytes = 0
    }

    let capacityBytes: Int
    let state = Mutex(State())
    /// Counts of what `take` and `give` did, for showing that a steady state allocates nothing.
    private let counts = Counts()

    private final class Counts: Sendable {
        let reused = Atomic<Int>(0), mapped = Atomic<Int>(0), mappedBytes = Atomic<Int>(0), small = Atomic<Int>(0), unmapped = Atomic<Int>(0)
    }

    init(capacityBytes: Int) { self.capacityBytes = capacityBytes }

    /// Sizes round up to whole pages above the cache threshold, so near sizes share blocks.
    static func roundedSize(_ bytes: Int) -> Int {
        bytes < minimumCachedBytes ? bytes : (bytes + 4095) & ~4095
    }

    func take(bytes: Int) -> UnsafeMutableRawPointer {
        if bytes >= Self.minimumCachedBytes {
            let reused: UInt? = state.withLock { s in
                guard let block = s.free[bytes]?.popLast() else { return nil }
                s.cachedBytes -= bytes
                return block
            }
            if let reused, let block = UnsafeMutableRawPointer(bitPattern: reused) {
                counts.reused.add(1, ordering: .relaxed)
                return block
            }
        }
        if bytes >= Self.minimumCachedBytes {
            // Large blocks are mapped pages of their own, never malloc heap: freed ones go back
            // to the system at once, so the heap cannot fragment and resident memory is exactly
            // the live tensors plus this cache (glibc would move big blocks into its arenas
            // after the first free and keep them).
            let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let mapped, mapped != MAP_FAILED else {
                preconditionFailure("TensorStorage: cannot map \(bytes) bytes (\(String(cString: strerror(errno))))")
            }
            counts.mapped.add(1, ordering: .relaxed)
            counts.mappedBytes.add(bytes, ordering: .relaxed)
            return mapped
        }
        counts.small.add(1, ordering: .relaxed)
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, bytes)
        guard status == 0, let raw else {
            // Out of memory is not recoverable for a training step; say what was asked for.
            preconditionFailure("TensorStorage: cannot allocate \(bytes) bytes (posix_memalign \(status))")
        }
        return raw
    }

    /// Returns a block to the system the way `take` got it.
    func release(_ block: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= Self.minimumCachedBytes {
            counts.unmapped.add(1, ordering: .relaxed)
            munmap(block, bytes)
        } else {
            free(block)
        }
    }

    func give(_ block: UnsafeMutableRawPointer, bytes: Int) {
        if bytes >= Self.minimumCachedBytes {
            let kept = state.withLock { s -> Bool in
                guard s.cachedBytes + bytes <= capacityBytes else { return false }
                s.free[bytes, default: []].append(UInt(bitPattern: block))
                s.cachedBytes += bytes
                return true
            }
            if kept { return }
        }
        release(block, bytes: bytes)
    }

    /// Bytes currently held for reuse.
    public var cachedBytes: Int { state.withLock { $0.cachedBytes } }

    /// What the cache has done since the process started; subtract two readings for a span.
    public struct Counters: Sendable, Equatable {
        /// Large blocks served from the cache, and mapped fresh (with their bytes).
        public var reused = 0, mapped = 0, mappedBytes = 0
        /// Blocks below the cache threshold, taken from malloc.
        public var small = 0
        /// Large blocks returned to the system (the cache was full, or `releaseAll`).
        public var unmapped = 0

        public init(reused: Int = 0, mapped: Int = 0, mappedBytes: Int = 0, small: Int = 0, unmapped: Int = 0) {
            (self.reused, self.mapped, self.mappedBytes, self.small, self.unmapped) = (reused, mapped, mappedBytes, small, unmapped)
        }

        public static func - (a: Counters, b: Counters) -> Counters {
            Counters(reused: a.reused - b.reused, mapped: a.mapped - b.mapped, mappedBytes: a.mappedBytes - b.mappedBytes,
                     small: a.small - b.small, unmapped: a.unmapped - b.unmapped)
        }
    }

    public var counters: Counters {
        Counters(reused: counts.reused.load(ordering: .relaxed), mapped: counts.mapped.load(ordering: .relaxed),
                 mappedBytes: counts.mappedBytes.load(ordering: .relaxed), small: counts.small.load(ordering: .relaxed),
                 unmapped: counts.unmapped.load(ordering: .relaxed))
    }

    /// Returns every cached block to the system (after training, before generation, …).
    public func releaseAll() {
        let blocks = state.withLock { s -> [(Int, UInt)] in
            defer { s.free = [:]; s.cachedBytes = 0 }
            return s.free.flatMap { size, blocks in blocks.map { (size, $0) } }
        }
        for (size, block) in blocks {
            if let pointer = UnsafeMutableRawPointer(bitPattern: block) { release(pointer, bytes: size) }
        }
    }
}
