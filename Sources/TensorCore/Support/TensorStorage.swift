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
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled when `zeroed` (gradients, accumulators).
    public init(count: Int, zeroed: Bool = false) {
        precondition(count >= 0, "TensorStorage: negative element count \(count)")
        self.count = count
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let status = posix_memalign(&raw, 64, bytes)
        guard status == 0, let raw else {
            // Out of memory is not recoverable for a training step; say what was asked for.
            preconditionFailure("TensorStorage: cannot allocate \(bytes) bytes (posix_memalign \(status))")
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        if zeroed { base.initialize(repeating: 0, count: count) }
    }

    deinit { free(base) }

    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }
}
