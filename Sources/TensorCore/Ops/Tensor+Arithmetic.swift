/// Broadcasting add, subtract, multiply, divide and scaling, forward and backward.
extension Tensor {
    enum BinaryOp: String { case add, sub, mul, div }

    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        let outShape = Broadcast.shape(a.shape, b.shape, op: op.rawValue)
        let out = TensorStorage(count: Tensor.elementCount(outShape))
        let sa = Broadcast.strides(of: a.shape, as: outShape)
        let sb = Broadcast.strides(of: b.shape, as: outShape)
        let pa = a.storage.base, pb = b.storage.base, po = out.base
        if a.shape == outShape && b.shape == outShape {
            let n = out.count
            Parallel.forChunks(n, minChunk: 1 << 15) { r in
                switch op {
                case .add: for i in r { po[i] = pa[i] + pb[i] }
                case .sub: for i in r { po[i] = pa[i] - pb[i] }
                case .mul: for i in r { po[i] = pa[i] * pb[i] }
                case .div: for i in r { po[i] = pa[i] / pb[i] }
                }
            }
        } else {
            Broadcast.forEachRow(outShape, sa, sb) { oa, ob, oo, count, ta, tb in
                for j in 0..<count {
                    let x = pa[oa + j * ta], y = pb[ob + j * tb]
                    switch op {
                    case .add: po[oo + j] = x + y
                    case .sub: po[oo + j] = x - y
                    case .mul: po[oo + j] = x * y
                    case .div: po[oo + j] = x / y
                    }
                }
            }
        }
        return record(op.rawValue, shape: outShape, storage: out, inputs: [a, b]) { ctx in
            let n = Tensor.elementCount(outShape)
            func sendBack(_ i: Int, shape: [Int], local: (Int, Float, Float) -> Float) {
                guard let target = ctx.gradient(i) else { return }
                // Per-element local gradient into a full-size temporary, then sum down.
                let tmp = TensorStorage(count: n)
                Broadcast.forEachRow(outShape, sa, sb) { oa, ob, oo, count, ta, tb in
                    for j in 0..<count {
                        tmp.base[oo + j] = local(oo + j, pa[oa + j * ta], pb[ob + j * tb])
                    }
                }
                Broadcast.accumulate(tmp.base, outShape: outShape, into: target, shape: shape)
            }
            let g = ctx.grad
            switch op {
            case .add, .sub:
                if let da = ctx.gradient(0) { Broadcast.accumulate(g, outShape: outShape, into: da, shape: a.shape) }
                if op == .add {
                    if let db = ctx.gradient(1) { Broadcast.accumulate(g, outShape: outShape, into: db, shape: b.shape) }
                } else {
                    sendBack(1, shape: b.shape) { i, _, _ in -g[i] }
                }
            case .mul:
                sendBack(0, shape: a.shape) { i, _, y in g[i] * y }
                sendBack(1, shape: b.shape) { i, x, _ in g[i] * x }
            case .div:
                sendBack(0, shape: a.shape) { i, _, y in g[i] / y }
                sendBack(1, shape: b.shape) { i, x, y in -g[i] * x / (y * y) }
            }
        }
    }

    /// self · factor.
    public func scaled(by factor: Float) -> Tensor {
        let out = TensorStorage(count: count)
        let src = storage.base, dst = out.base
        Parallel.forChunks(count, minChunk: 1 << 15) { r in for i in r { dst[i] = src[i] * factor } }
        return Tensor.record("scale", shape: shape, storage: out, inputs: [self]) { ctx in
            if let dx = ctx.gradient(0) { axpy(out.count, factor, ctx.grad, dx) }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b) }
    public static func * (a: Tensor, factor: Float) -> Tensor { a.scaled(by: factor) }
}
