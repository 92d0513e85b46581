import Architectures
import Quantization
import TensorCore

/// PiSSA and LoftQ: adapters that start from a decomposition of the base weight instead of
/// from zero, each with a rewritten frozen base so that base + scale·B·A starts where (PiSSA)
/// or closer to where (LoftQ) the original weight was.
extension LoRALinear {
    /// An adapter over `layer` (a frozen projection) initialised by `config.initialization`
    /// (.pissa or .loftq), its base re-encoded in `basePrecision`.
    ///
    /// Both split singular values as √(σ/scale) into A and B, so scale·B·A is the rank-r part
    /// itself. (PEFT 0.21 does this for PiSSA; for LoftQ it sets B·A to the rank-r part and the
    /// scale then multiplies it, which agrees only when alpha = r.)
    convenience init(decomposing layer: any LinearLayer, name: String, config: LoRAConfig, basePrecision: BasePrecision,
                     rng: inout RandomGenerator) throws(ModelError) {
        guard let frozen = layer as? QuantizedLinear else {
            throw .invalidConfig("\(name): \(config.initialization) needs a frozen base weight to decompose")
        }
        let w = frozen.weight.decoded()  // [O, I]
        let (o, i, r, scale) = (w.shape[0], w.shape[1], config.rank, config.scale)
        guard r <= min(o, i) else { throw .invalidConfig("\(name): rank \(r) exceeds the \(o)×\(i) weight's rank") }
        func lowRank(_ m: Tensor) throws(ModelError) -> (a: Tensor, b: Tensor) {  // scale·B·A = best rank-r approximation of m
            guard let svd = m.singularValueDecomposition() else { throw .invalidConfig("\(name): the SVD did not converge") }
            let a = Tensor(zeros: [r, i], requiresGrad: true), b = Tensor(zeros: [o, r], requiresGrad: true)
            for k in 0..<r {
                let root = (max(svd.values[k], 0) / scale).squareRoot()
                for j in 0..<i { a.storage.base[k * i + j] = root * svd.vt.storage.base[k * i + j] }
                for j in 0..<o { b.storage.base[j * r + k] = root * svd.u.storage.base[j * min(o, i) + k] }
            }
            return (a, b)
        }
        func minus(_ x: Tensor, scaledProductOf a: Tensor, _ b: Tensor) -> Tensor {  // x − scale·B·A
            noGrad { x - b.matmul(a).scaled(by: scale) }
        }

        let base: any QuantizedMatrix, factors: (a: Tensor, b: Tensor)
        switch config.initialization {
        case .pissa:
            factors = try lowRank(w)
            base = try basePrecision.encode(minus(w, scaledProductOf: factors.a, factors.b), name: name)
        case .loftq:
            guard basePrecision != .f32 else {
                throw .invalidConfig("\(name): loftq corrects quantization error and needs a quantized base (nf4 or q8_0), not f32")
            }
            var target = w, quantized: any QuantizedMatrix
            var current: (a: Tensor, b: Tensor)
            var step = 0
            repeat {
                quantized = try basePrecision.encode(target, name: name)
                current = try lowRank(noGrad { w - quantized.decoded() })
                target = minus(w, scaledProductOf: current.a, current.b)
                step += 1
            } while step < max(config.loftqIterations, 1)
            base = quantized
            factors = current
        case .default, .gaussian:
            preconditionFailure("init(decomposing:) is for pissa and loftq")
        }
        let rebuilt = QuantizedLinear(weight: base, bias: frozen.bias, panelRows: frozen.panelRows)
        self.init(base: rebuilt, a: factors.a, b: factors.b, scale: scale, dropout: config.dropout, rng: rng.split())
    }
}
