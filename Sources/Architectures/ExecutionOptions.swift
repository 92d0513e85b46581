import TensorCore

/// How a model's forward and backward passes run: derived once (from a recipe, or the
/// inference defaults) and passed explicitly to `loss`, `logits` and `hiddenStates`, so every
/// caller — training, validation, evaluation, benchmarks — computes the same way.
public struct ExecutionOptions: Sendable, Equatable {
    /// What the frozen base's matmuls compute in (see `ComputeDType`).
    public var computeDType: ComputeDType
    /// Recompute each decoder layer in backward instead of keeping its activations.
    public var gradientCheckpointing: Bool
    /// With checkpointing, bytes of frozen-base products the layers may keep from their first
    /// run so their recomputation skips those GEMMs (earliest layers first; 0 keeps none).
    public var checkpointKeepBytes: Int

    public init(computeDType: ComputeDType = .f32, gradientCheckpointing: Bool = false, checkpointKeepBytes: Int = 0) {
        self.computeDType = computeDType
        self.gradientCheckpointing = gradientCheckpointing
        self.checkpointKeepBytes = checkpointKeepBytes
    }

    /// f32, no checkpointing: what generation and plain evaluation use.
    public static let inference = ExecutionOptions()
}
