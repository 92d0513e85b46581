import Foundation

/// The learning rate at each optimizer step, with Hugging Face transformers' schedules
/// (`get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup`,
/// `get_cosine_with_min_lr_schedule_with_warmup`) so a recipe means what it means there.
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case constant, linear, cosine }

    public var kind: Kind
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    /// The floor as a fraction of the peak (linear and cosine decay towards it).
    public var minRatio: Float

    public init(kind: Kind = .cosine, peak: Float, warmupSteps: Int = 0, totalSteps: Int, minRatio: Float = 0) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minRatio = minRatio
    }

    /// The rate for the optimizer step that follows `completed` steps (0-based, as the
    /// transformers schedulers count: with warmup, the first step runs at rate 0).
    public func rate(afterSteps completed: Int) -> Float {
        if completed < warmupSteps { return peak * Float(completed) / Float(max(1, warmupSteps)) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(completed - warmupSteps) / Double(span))
        let factor: Double
        switch kind {
        case .constant: return peak
        case .linear: factor = 1 - progress
        case .cosine: factor = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        }
        return peak * Float(Double(minRatio) + (1 - Double(minRatio)) * factor)
    }
}
