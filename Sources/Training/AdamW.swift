import Foundation
import TensorCore

/// AdamW (Loshchilov & Hutter): Adam with weight decay applied to the parameter directly
/// rather than through the gradient, with bias-corrected moments — PyTorch's `AdamW`
/// arithmetic, in its order, so runs agree with PEFT step for step.
public struct AdamW {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    public var weightDecay: Float
    /// Steps taken (the bias corrections depend on it); saved in checkpoints.
    public private(set) var step = 0
    /// First and second moments by parameter name; saved in checkpoints.
    public private(set) var moments: [String: (m: TensorStorage, v: TensorStorage)] = [:]

    public init(learningRate: Float = 1e-4, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// One update of every named parameter that has a gradient in `gradients`.
    public mutating func update(_ parameters: [(name: String, tensor: Tensor)], gradients: GradientStore) {
        update(parameters) { _, p in gradients[p].map { UnsafePointer($0.storage.base) } }
    }

    /// One update from accumulated (and possibly clipped) gradients, by parameter name.
    public mutating func update(_ parameters: [(name: String, tensor: Tensor)], accumulated: [String: TensorStorage]) {
        update(parameters) { name, _ in accumulated[name].map { UnsafePointer($0.base) } }
    }

    /// Puts back the state a checkpoint saved: the step count and every parameter's moments.
    public mutating func restore(step: Int, moments: [String: (m: TensorStorage, v: TensorStorage)]) {
        self.step = step
        self.moments = moments
    }

    mutating func update(_ parameters: [(name: String, tensor: Tensor)], gradient: (String, Tensor) -> UnsafePointer<Float>?) {
        step += 1
        let t = Float(step)
        let correction1 = 1 - Foundation.pow(beta1, t)
        let correction2Root = (1 - Foundation.pow(beta2, t)).squareRoot()
        let stepSize = learningRate / correction1
        for (name, p) in parameters {
            guard let grad = gradient(name, p) else { continue }
            if moments[name] == nil {
                moments[name] = (TensorStorage(count: p.count, zeroed: true), TensorStorage(count: p.count, zeroed: true))
            }
            guard let (m, v) = moments[name] else { continue }
            let decay = 1 - learningRate * weightDecay
            let (b1, b2, eps) = (beta1, beta2, epsilon)
            p.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count {
                    w[i] *= decay
                    m.base[i] = m.base[i] * b1 + grad[i] * (1 - b1)
                    v.base[i] = v.base[i] * b2 + grad[i] * grad[i] * (1 - b2)
                    let denominator = v.base[i].squareRoot() / correction2Root + eps
                    w[i] -= stepSize * m.base[i] / denominator
                }
            }
        }
    }
}
