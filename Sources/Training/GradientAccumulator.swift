import TensorCore

/// Sums the gradients of several micro-batches per parameter, then clips them by their global
/// norm — what one optimizer step of an accumulated batch sees.
///
/// Every gradient lives in one flat buffer, parameter after parameter in the order first
/// given (the adapter's, sorted by name), followed by `extraSlots` values that travel with them
/// (a data-parallel step's loss, token count and stop vote): one all-reduce of `flat` sums a
/// step across ranks.
public struct GradientAccumulator {
    /// Values after the gradients in `flat`.
    public let extraSlots: Int
    /// [gradients…, extras…], allocated on first use and reused every step.
    public private(set) var flat: TensorStorage?
    /// Where each parameter's gradient sits in `flat`, in order.
    public private(set) var layout: [(name: String, range: Range<Int>)] = []
    var slots: [String: Range<Int>] = [:]

    public init(extraSlots: Int = 0) {
        precondition(extraSlots >= 0, "GradientAccumulator: negative extra slots")
        self.extraSlots = extraSlots
    }

    /// Lays out (once) and zeroes nothing: makes `flat` hold these parameters' gradients.
    /// Later calls must name the same parameters with the same sizes.
    public mutating func prepare(_ parameters: [(name: String, tensor: Tensor)]) {
        if flat != nil {
            precondition(parameters.count == layout.count && zip(parameters, layout).allSatisfy { $0.name == $1.name && $0.tensor.count == $1.range.count },
                         "GradientAccumulator: the parameters changed between steps")
            return
        }
        var offset = 0
        for (name, p) in parameters {
            layout.append((name, offset..<offset + p.count))
            slots[name] = offset..<offset + p.count
            offset += p.count
        }
        flat = TensorStorage(count: offset + extraSlots, zeroed: true)
    }

    /// Gradients in `flat` (the extras excluded).
    public var gradientCount: Int { layout.last?.range.upperBound ?? 0 }

    /// The summed gradient of `name`.
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float>? {
        guard let flat, let range = slots[name] else { return nil }
        return UnsafeMutableBufferPointer(start: flat.base + range.lowerBound, count: range.count)
    }

    /// The values after the gradients.
    public var extras: UnsafeMutableBufferPointer<Float> {
        guard let flat else { return UnsafeMutableBufferPointer(start: nil, count: 0) }
        return UnsafeMutableBufferPointer(start: flat.base + gradientCount, count: extraSlots)
    }

    /// Adds every parameter's gradient from `store` (parameters backward did not reach add 0).
    public mutating func add(_ parameters: [(name: String, tensor: Tensor)], from store: GradientStore) {
        prepare(parameters)
        for (name, p) in parameters {
            guard let sum = gradient(name), let g = store[p] else { continue }
            axpy(p.count, 1, g.storage.base, sum.baseAddress!)
        }
    }

    /// √(Σ g²) over every summed gradient, accumulated in Double, parameter by parameter in name
    /// order.
    public var globalNorm: Double {
        var total = 0.0
        for (name, _) in layout.sorted(by: { $0.name < $1.name }) {
            guard let s = gradient(name) else { continue }
            for x in s { total += Double(x) * Double(x) }
        }
        return total.squareRoot()
    }

    /// Scales all gradients so their global norm is at most `maxNorm` (PyTorch's
    /// clip_grad_norm_: factor maxNorm / (norm + 1e-6), applied only when below 1). Returns
    /// the norm before clipping.
    @discardableResult
    public mutating func clip(maxNorm: Double) -> Double {
        let norm = globalNorm
        let factor = maxNorm / (norm + 1e-6)
        if factor < 1, let flat {
            for i in 0..<gradientCount { flat.base[i] = Float(Double(flat.base[i]) * factor) }
        }
        return norm
    }

    /// Zeroes the sums and extras for the next step (buffer kept).
    public mutating func reset() {
        if let flat { flat.base.update(repeating: 0, count: flat.count) }
    }
}
