/// Whether ops record nodes for backpropagation in the current task.
///
/// A task-local value rather than a global: evaluation or generation running in another
/// task is unaffected by a `noGrad` scope here.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
    /// True while a checkpointed block is recomputed for the backward that runs right after
    /// it: an op may then keep what its backward would otherwise redo (decoded weights), as
    /// the recomputed graph is released moments later.
    @TaskLocal public static var backwardFollows = false
}

/// Runs `body` without recording any op: results are leaves that need no gradient.
/// Evaluation, generation and finite-difference probes run inside it.
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false) { try body() }
}
