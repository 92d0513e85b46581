/// Sums and means over axes, forward and backward.
extension Tensor {
    /// Sum over `axes` (all axes when empty). Reduced axes are kept as size 1 when `keepDims`.
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let axesSet = Set(axes.isEmpty ? Array(0..<rank) : axes.map(normalize(axis:)))
        let kept = shape.enumerated().map { axesSet.contains($0.offset) ? 1 : $0.element }
        let outShape = keepDims ? kept : shape.enumerated().filter { !axesSet.contains($0.offset) }.map(\.element)
        let out = TensorStorage(count: Tensor.elementCount(kept), zeroed: true)
        Broadcast.accumulate(storage.base, outShape: shape, into: out.base, shape: kept)
        let inShape = shape
        return Tensor.record("sum", shape: outShape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let sg = Broadcast.strides(of: kept, as: inShape)
            let g = ctx.grad
            Broadcast.forEachRow(inShape, sg, sg) { og, _, ox, count, tg, _ in
                for j in 0..<count { dx[ox + j] += g[og + j * tg] }
            }
        }
    }

    /// Mean over `axes` (all axes when empty).
    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let reduced = axes.isEmpty ? count : axes.map { dim($0) }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims).scaled(by: 1 / Float(max(reduced, 1)))
    }
}
