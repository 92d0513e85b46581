/// Finite-difference gradient checking: the oracle for every hand-written backward pass.
///
/// The function's output is reduced to a scalar L = Σ out ⊙ R with a fixed random R (so every
/// output element matters and no symmetry hides a wrong sign). The analytic gradient comes
/// from `backward`; the numeric one from central differences (L(x+ε) − L(x−ε)) / 2ε, with L
/// accumulated in Double. Inputs are perturbed in place and restored.
public enum GradientCheck {
    public struct Mismatch: Sendable, CustomStringConvertible {
        public let input: Int, index: Int
        public let analytic: Float, numeric: Float
        public var description: String {
            "input \(input) element \(index): analytic \(analytic), numeric \(numeric)"
        }
    }

    public struct Report: Sendable {
        /// Elements compared, over all inputs that require a gradient.
        public var checked = 0
        /// The largest |analytic − numeric| / (atol + rtol·|numeric|); ≤ 1 means all agree.
        public var worstRatio: Float = 0
        public var mismatches: [Mismatch] = []
    }

    /// Compares analytic and numeric gradients of `function` for each input that requires a
    /// gradient. At most `maxElements` elements per input are probed (spread evenly).
    public static func run(_ inputs: [Tensor], epsilon: Float = 1e-2, atol: Float = 1e-3, rtol: Float = 1e-2,
                           maxElements: Int = 400, seed: UInt64 = 7,
                           _ function: ([Tensor]) -> Tensor) -> Report {
        let probe = function(inputs)
        var rng = RandomGenerator(seed: seed)
        let projection = Tensor(uniform: probe.shape, low: -1, high: 1, rng: &rng)
        let grads = probe.backward(seed: projection)

        func loss() -> Double {
            noGrad {
                let out = function(inputs)
                var total = 0.0
                for i in 0..<out.count { total += Double(out.storage.base[i]) * Double(projection.storage.base[i]) }
                return total
            }
        }

        var report = Report()
        for (which, input) in inputs.enumerated() where input.requiresGrad {
            let analytic = grads[input]
            let step = max(1, input.count / maxElements)
            for index in stride(from: 0, to: input.count, by: step) {
                let p = input.storage.base + index
                let original = p.pointee
                p.pointee = original + epsilon
                let plus = loss()
                p.pointee = original - epsilon
                let minus = loss()
                p.pointee = original
                let numeric = Float((plus - minus) / (2 * Double(epsilon)))
                let value = analytic.map { $0.storage.base[index] } ?? 0
                let ratio = abs(value - numeric) / (atol + rtol * abs(numeric))
                report.checked += 1
                report.worstRatio = max(report.worstRatio, ratio.isNaN ? .infinity : ratio)
                if !(ratio <= 1) { report.mismatches.append(Mismatch(input: which, index: index, analytic: value, numeric: numeric)) }
            }
        }
        return report
    }
}
