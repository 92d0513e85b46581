import CKernels
import Synchronization

/// bf16 GEMM with f32 accumulation (CKernels' `lk_gemm_bf16_*`), split over `SpinPool`'s
/// threads: C[M, N] = A[M, K] · op(B) + beta·C with op(B) = B[N, K]ᵀ (`transB`) or B[K, N].
///
/// Both operands are f32 and rounded to bf16 (nearest even) while packing, as bf16 autocast
/// does to a Linear layer's input and weight; products are exact and summed in f32. On CPUs
/// without AVX512_BF16 the same packing runs a portable micro-kernel (correct, not fast).
///
/// The packed operands live in scratch that is kept between calls (no allocation per step in
/// the steady state). `packA` then `multiply(packedA:…)` reuses one packed A across several
/// B panels (a quantized weight decoded panel by panel).
public final class BF16GEMM {
    /// The scratch the engine's ops share, claimed through `sharedBusy` (the pattern of
    /// `SpinPool.busy`); an op that finds it in use (a concurrent caller) runs on temporary
    /// scratch instead.
    private static nonisolated(unsafe) let sharedInstance = BF16GEMM()
    private static let sharedBusy = Atomic<Bool>(false)

    /// Runs `body` with the shared scratch when it is free, else with temporary scratch.
    public static func withShared<R>(_ body: (BF16GEMM) -> R) -> R {
        guard sharedBusy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return body(BF16GEMM()) }
        defer { sharedBusy.store(false, ordering: .releasing) }
        return body(sharedInstance)
    }

    private var packedA = Scratch(), packedB = Scratch()
    /// Shape of what `packA` last packed.
    private var packedShape: (m: Int, k: Int)?

    public init() {}

    /// Whether the `vdpbf16ps` micro-kernel runs (AVX512_BF16 and no ISA cap below AVX-512).
    public static var isNative: Bool { lk_gemm_bf16_native() != 0 }

    /// Packs A[m, k] (row stride lda) for the next `multiply(packedA:…)` calls.
    public func packA(m: Int, k: Int, a: UnsafePointer<Float>, lda: Int) {
        precondition(m >= 0 && k >= 0 && lda >= k, "BF16GEMM: bad A shape \(m)×\(k), lda \(lda)")
        let panels = Self.panels(m, Int(LK_BF16_MR))
        let words = lk_gemm_bf16_packed_a_words(m, k)
        let pa = packedA.reserve(words)
        Self.split(panels, minChunk: 4) { lo, hi in lk_gemm_bf16_pack_a(m, k, a, lda, lo, hi, pa) }
        packedShape = (m, k)
    }

    /// C[m, n] = A · op(B) + beta·C with the A from the last `packA` (B [n, k] when transB,
    /// else [k, n], row stride ldb).
    public func multiply(packedA m: Int, n: Int, transB: Bool, b: UnsafePointer<Float>, ldb: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard let shape = packedShape, shape.m == m else { preconditionFailure("BF16GEMM: multiply before packA of \(m) rows") }
        let k = shape.k
        precondition(n >= 0 && ldb >= (transB ? k : n) && ldc >= n, "BF16GEMM: bad B/C strides for n \(n), k \(k)")
        guard m > 0, n > 0 else { return }
        let pa = UnsafePointer(packedA.base)
        let pb = packedB.reserve(lk_gemm_bf16_packed_b_words(n, k))
        Self.split(Self.panels(n, Int(LK_BF16_NR)), minChunk: 2) { lo, hi in
            lk_gemm_bf16_pack_b(transB ? 1 : 0, n, k, b, ldb, lo, hi, pb)
        }
        let pbc = UnsafePointer(pb)
        // Row panels in a few chunks per thread, claimed dynamically: a descheduled worker
        // then costs a chunk, not half the product.
        let rowPanels = Self.panels(m, Int(LK_BF16_MR))
        let chunks = max(1, min(rowPanels / 4, 4 * SpinPool.shared.threads))
        SpinPool.shared.run(chunks: chunks) { chunk in
            lk_gemm_bf16_packed(m, n, k, pa, pbc, rowPanels * chunk / chunks, rowPanels * (chunk + 1) / chunks, beta, c, ldc)
        }
    }

    /// C[m, n] = A[m, k] · op(B) + beta·C in one call.
    public func multiply(transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                         b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        packA(m: m, k: k, a: a, lda: lda)
        multiply(packedA: m, n: n, transB: transB, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    static func panels(_ count: Int, _ size: Int) -> Int { (count + size - 1) / size }

    /// `body(lo, hi)` over disjoint ranges covering 0..<count, one per thread.
    static func split(_ count: Int, minChunk: Int, _ body: (Int, Int) -> Void) {
        let chunks = max(1, min(SpinPool.shared.threads, count / minChunk))
        SpinPool.shared.run(chunks: chunks) { chunk in body(count * chunk / chunks, count * (chunk + 1) / chunks) }
    }

    /// A 64-byte-aligned buffer of u32 words that only grows.
    private struct Scratch: ~Copyable {
        private(set) var base: UnsafeMutablePointer<UInt32>
        private var capacity = 0

        init() { base = .allocate(capacity: 0) }

        mutating func reserve(_ words: Int) -> UnsafeMutablePointer<UInt32> {
            if words > capacity {
                base.deallocate()
                let raw = UnsafeMutableRawPointer.allocate(byteCount: max(words, 1) * 4, alignment: 64)
                base = raw.bindMemory(to: UInt32.self, capacity: max(words, 1))
                capacity = words
            }
            return base
        }

        deinit { base.deallocate() }
    }
}

/// C[m, n] = A[m, k] · op(B) + beta·C (op(B) = B[n, k]ᵀ when `transB`, else B[k, n]) in the
/// given compute dtype: `gemm` for f32, the shared `BF16GEMM` for bf16. Ops whose products
/// follow `ComputeDType` choose between the two here.
public func gemm(compute: ComputeDType, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    switch compute {
    case .f32:
        gemm(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    case .bf16:
        BF16GEMM.withShared { $0.multiply(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) }
    }
}
