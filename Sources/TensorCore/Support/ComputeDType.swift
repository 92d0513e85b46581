/// The element type the frozen base's matmuls compute in (recipe key `training.compute_dtype`).
///
/// `.bf16` rounds a frozen linear layer's input and decoded weight to bf16 and multiplies them
/// with f32 accumulation (`BF16GEMM`), forward and input gradient, as bf16 autocast does for
/// Linear layers, and so does the frozen output head's pair of products in the fused loss
/// (logits, and softmax times the head for the input gradient); everything else (LoRA, norms,
/// attention, the softmax and loss arithmetic, every gradient and every output) stays f32. A task-local value, so that the choice follows one training step from
/// its forward through its backward without being threaded through every layer.
public enum ComputeDType: String, Sendable, CaseIterable, Codable {
    case f32, bf16

    @TaskLocal public static var current: ComputeDType = .f32
}

/// Runs `body` with the frozen base's matmuls computing in `dtype`.
public func withComputeDType<R, E: Error>(_ dtype: ComputeDType, _ body: () throws(E) -> R) throws(E) -> R {
    let result = ComputeDType.$current.withValue(dtype) { Result { () throws(E) -> R in try body() } }
    return try result.get()
}
