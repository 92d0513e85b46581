@testable import TensorCore
import TestSupport
import XCTest

/// One harness for every op: each case names an op, builds seeded inputs of odd shapes and
/// checks its backward against finite differences. Adding an op means adding a case.
final class OpGradientTests: XCTestCase {
    struct Case {
        let name: String
        let inputs: () -> [Tensor]
        let function: ([Tensor]) -> Tensor
        var epsilon: Float = 1e-2
    }

    static func t(_ shape: [Int], _ seed: UInt64, grad: Bool = true, scale: Float = 1) -> Tensor {
        Fixtures.tensor(shape, seed: seed, requiresGrad: grad, scale: scale)
    }
    /// Values in [0.5, 1.5]: safe denominators.
    static func positive(_ shape: [Int], _ seed: UInt64) -> Tensor {
        let base = Fixtures.tensor(shape, seed: seed, requiresGrad: false, scale: 0.5)
        return Tensor(shape: shape, scalars: base.scalars.map { $0 + 1 }, requiresGrad: true)
    }

    static let segments = IntTensor(shape: [2, 9], scalars: [0, 0, 0, 1, 1, 1, 1, 2, 2,  5, 5, 5, 5, 5, 5, 5, 5, 5])
    static let positions = IntTensor(shape: [2, 9], scalars: [0, 1, 2, 0, 1, 2, 3, 0, 1,  0, 1, 2, 3, 4, 5, 6, 7, 8])

    static var cases: [Case] { [
        Case(name: "matmul 3×5·5×7", inputs: { [t([3, 5], 1), t([5, 7], 2)] }, function: { $0[0].matmul($0[1]) }),
        Case(name: "matmul 45×65·65×3", inputs: { [t([45, 65], 3), t([65, 3], 4)] }, function: { $0[0].matmul($0[1]) }),
        Case(name: "matmul aᵀ·b", inputs: { [t([5, 3], 5), t([5, 7], 6)] }, function: { $0[0].matmul($0[1], transposeA: true) }),
        Case(name: "matmul a·bᵀ", inputs: { [t([3, 5], 7), t([7, 5], 8)] }, function: { $0[0].matmul($0[1], transposeB: true) }),
        Case(name: "matmul aᵀ·bᵀ", inputs: { [t([5, 3], 9), t([7, 5], 10)] },
             function: { $0[0].matmul($0[1], transposeA: true, transposeB: true) }),
        Case(name: "matmul batched 2×3×5·2×5×7", inputs: { [t([2, 3, 5], 11), t([2, 5, 7], 12)] }, function: { $0[0].matmul($0[1]) }),
        Case(name: "matmul batched aᵀ·bᵀ", inputs: { [t([2, 5, 3], 13), t([2, 7, 5], 14)] },
             function: { $0[0].matmul($0[1], transposeA: true, transposeB: true) }),
        Case(name: "matmul shared weight (linear) 3×5×7·(4×7)ᵀ", inputs: { [t([3, 5, 7], 15), t([4, 7], 16)] },
             function: { $0[0].matmul($0[1], transposeB: true) }),
        Case(name: "matmul shared weight with aᵀ", inputs: { [t([2, 7, 5], 17), t([7, 4], 18)] },
             function: { $0[0].matmul($0[1], transposeA: true) }),
        Case(name: "add same shape", inputs: { [t([3, 5, 7], 20), t([3, 5, 7], 21)] }, function: { $0[0] + $0[1] }),
        Case(name: "add broadcast row", inputs: { [t([3, 5, 7], 22), t([7], 23)] }, function: { $0[0] + $0[1] }),
        Case(name: "sub broadcast middle", inputs: { [t([3, 5, 7], 24), t([3, 1, 7], 25)] }, function: { $0[0] - $0[1] }),
        Case(name: "mul broadcast both", inputs: { [t([3, 1, 7], 26), t([1, 5, 1], 27)] }, function: { $0[0] * $0[1] }),
        Case(name: "mul scalar tensor", inputs: { [t([3, 5, 7], 28), t([1], 29)] }, function: { $0[0] * $0[1] }),
        Case(name: "div broadcast", inputs: { [t([3, 5, 7], 30), positive([5, 1], 31)] }, function: { $0[0] / $0[1] }),
        Case(name: "div same shape", inputs: { [t([3, 5, 7], 32), positive([3, 5, 7], 33)] }, function: { $0[0] / $0[1] }),
        Case(name: "scale", inputs: { [t([3, 5, 7], 34)] }, function: { $0[0].scaled(by: -2.5) }),
        Case(name: "sum axis 1", inputs: { [t([3, 5, 7], 35)] }, function: { $0[0].sum(axes: [1]) }),
        Case(name: "sum axes 0,2 keepDims", inputs: { [t([3, 5, 7], 36)] }, function: { $0[0].sum(axes: [0, 2], keepDims: true) }),
        Case(name: "sum all", inputs: { [t([3, 5, 7], 37)] }, function: { $0[0].sum() }),
        Case(name: "mean axis -1", inputs: { [t([3, 5, 7], 38)] }, function: { $0[0].mean(axes: [-1]) }),
        Case(name: "reshape", inputs: { [t([3, 5, 7], 39)] }, function: { $0[0].reshaped([15, -1]) * $0[0].reshaped([15, 7]) }),
        Case(name: "transpose", inputs: { [t([3, 5, 7], 40)] }, function: { $0[0].transposed(0, 2) }),
        Case(name: "permute", inputs: { [t([3, 5, 7], 41)] }, function: { $0[0].permuted([1, 2, 0]) }),
        Case(name: "slice", inputs: { [t([3, 5, 7], 42)] }, function: { $0[0].slice(axis: 1, 1..<4) }),
        Case(name: "concat", inputs: { [t([3, 2, 7], 43), t([3, 5, 7], 44)] }, function: { Tensor.concat($0, axis: 1) }),
        Case(name: "embedding (repeated ids)", inputs: { [t([11, 5], 45)] },
             function: { Tensor.embedding($0[0], ids: IntTensor(shape: [3, 7], scalars: (0..<21).map { Int32(($0 * 7) % 11) })) }),
        Case(name: "rmsNorm", inputs: { [t([3, 5, 7], 46), t([7], 47)] }, function: { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-5) }),
        Case(name: "rmsNorm (1 + w)", inputs: { [t([3, 5, 7], 48), t([7], 49)] },
             function: { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-6, weightOffset: 1) }),
        Case(name: "rotary, packed positions, partial", inputs: { [t([2, 9, 3, 8], 50)] },
             function: { $0[0].rotary(RotaryEmbedding(rotaryDim: 6, base: 10_000), positions: positions) }),
        Case(name: "silu", inputs: { [t([3, 5, 7], 51, scale: 4)] }, function: { $0[0].silu() }),
        Case(name: "gelu tanh", inputs: { [t([3, 5, 7], 52, scale: 4)] }, function: { $0[0].geluTanh() }),
        Case(name: "swiglu", inputs: { [t([3, 5, 7], 53, scale: 3), t([3, 5, 7], 54)] },
             function: { Tensor.swiglu(gate: $0[0], up: $0[1]) }),
        Case(name: "swiglu, gate and up stacked", inputs: { [t([3, 5, 14], 73, scale: 3)] },
             function: { Tensor.swiglu(stacked: $0[0]) }),
        Case(name: "tanh", inputs: { [t([3, 5, 7], 72, scale: 3)] }, function: { $0[0].tanh() }),
        Case(name: "softmax", inputs: { [t([3, 5, 7], 55, scale: 3)] }, function: { $0[0].softmax() }),
        Case(name: "dropout (seeded mask)", inputs: { [t([3, 5, 7], 56)] }, function: { x in
            var rng = RandomGenerator(seed: 99)
            return x[0].dropout(probability: 0.3, rng: &rng)
        }),
        Case(name: "attention GQA + segments", inputs: { [t([2, 9, 4, 6], 57), t([2, 9, 2, 6], 58), t([2, 9, 2, 6], 59)] },
             function: { Tensor.causalAttention(q: $0[0], k: $0[1], v: $0[2], segments: segments, options: AttentionOptions(scale: 0.41)) }),
        Case(name: "attention MHA, no segments", inputs: { [t([1, 7, 3, 5], 60), t([1, 7, 3, 5], 61), t([1, 7, 3, 5], 62)] },
             function: { Tensor.causalAttention(q: $0[0], k: $0[1], v: $0[2], options: AttentionOptions(scale: 0.45)) }),
        Case(name: "attention sliding window + softcap", inputs: { [t([2, 9, 4, 6], 63, scale: 2), t([2, 9, 1, 6], 64, scale: 2), t([2, 9, 1, 6], 65)] },
             function: { Tensor.causalAttention(q: $0[0], k: $0[1], v: $0[2], segments: segments,
                                                options: AttentionOptions(scale: 0.41, window: 3, softcap: 1.5)) }),
        Case(name: "attention GQA + segments, query blocks of 4", inputs: { [t([2, 9, 4, 6], 57), t([2, 9, 2, 6], 58), t([2, 9, 2, 6], 59)] },
             function: { Tensor.causalAttention(q: $0[0], k: $0[1], v: $0[2], segments: segments, options: AttentionOptions(scale: 0.41),
                                                queryBlock: 4) }),
        Case(name: "attention sliding window + softcap, query blocks of 2", inputs: { [t([2, 9, 4, 6], 63, scale: 2), t([2, 9, 1, 6], 64, scale: 2), t([2, 9, 1, 6], 65)] },
             function: { Tensor.causalAttention(q: $0[0], k: $0[1], v: $0[2], segments: segments,
                                                options: AttentionOptions(scale: 0.41, window: 3, softcap: 1.5), queryBlock: 2) }),
        Case(name: "cross-entropy, masked, chunked", inputs: { [t([9, 5], 66), t([13, 5], 67)] }, function: {
            Tensor.linearCrossEntropy(hidden: $0[0], weight: $0[1],
                                      targets: IntTensor(shape: [9], scalars: [3, -100, 12, 0, 7, -1, 7, 5, 1]),
                                      chunking: CrossEntropyChunking(vocabChunk: 4, rowChunk: 3))
        }),
        Case(name: "cross-entropy 45×65 hidden", inputs: { [t([45, 65], 68, scale: 0.3), t([17, 65], 69, scale: 0.3)] }, function: {
            Tensor.linearCrossEntropy(hidden: $0[0], weight: $0[1], targets: Fixtures.ints([45], upper: 17, seed: 70),
                                      chunking: CrossEntropyChunking(vocabChunk: 5, rowChunk: 16))
        }),
    ] }

    func testEveryOpMatchesFiniteDifferences() {
        for c in Self.cases {
            assertGradientsMatch(c.inputs(), epsilon: c.epsilon, c.name, c.function)
        }
    }

    /// A wrong backward must be caught: the checker itself is tested on a deliberately broken op.
    func testCheckerCatchesAWrongGradient() {
        let x = Self.t([3, 4], 71)
        let report = GradientCheck.run([x]) { inputs in
            // The value is x, but the detached term hides −2x from the graph: analytic 3, numeric 1.
            inputs[0].scaled(by: 3) - inputs[0].detached().scaled(by: 2)
        }
        XCTAssertFalse(report.mismatches.isEmpty, "a gradient off by 1.5× went unnoticed")
    }
}
