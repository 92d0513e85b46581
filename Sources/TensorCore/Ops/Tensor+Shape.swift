/// Reshape, transpose/permute, slice and concatenate, forward and backward.
extension Tensor {
    /// Same data, new shape (no copy). One dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(shape)")
            target[hole] = count / known
        }
        precondition(Tensor.elementCount(target) == count, "reshape: \(shape) → \(newShape) changes the element count")
        let n = count
        return Tensor.record("reshape", shape: target, storage: storage, inputs: [self]) { ctx in
            if let dx = ctx.gradient(0) { axpy(n, 1, ctx.grad, dx) }
        }
    }

    /// Swaps two axes (copies).
    public func transposed(_ axis0: Int = -2, _ axis1: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalize(axis: axis0), normalize(axis: axis1))
        return permuted(order)
    }

    /// Reorders axes: output axis i is input axis order[i] (copies).
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of the axes of \(shape)")
        let outShape = order.map { shape[$0] }
        let inStrides = Tensor.strides(shape)
        let readStrides = order.map { inStrides[$0] }  // input offset per output axis step
        let out = TensorStorage(count: count)
        let src = storage.base, dst = out.base
        Broadcast.forEachRow(outShape, readStrides, readStrides) { oi, _, oo, c, t, _ in
            for j in 0..<c { dst[oo + j] = src[oi + j * t] }
        }
        return Tensor.record("permute", shape: outShape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            let g = ctx.grad
            Broadcast.forEachRow(outShape, readStrides, readStrides) { oi, _, oo, c, t, _ in
                for j in 0..<c { dx[oi + j * t] += g[oo + j] }
            }
        }
    }

    /// Elements `range` along `axis` (copies).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = normalize(axis: axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice: \(range) out of bounds for axis \(axis) of \(shape)")
        var outShape = shape
        outShape[ax] = range.count
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *)
        let inRow = shape[ax] * inner, outRow = range.count * inner, start = range.lowerBound * inner
        let out = TensorStorage(count: outer * outRow)
        let src = storage.base
        for o in 0..<outer { (out.base + o * outRow).update(from: src + o * inRow + start, count: outRow) }
        return Tensor.record("slice", shape: outShape, storage: out, inputs: [self]) { ctx in
            guard let dx = ctx.gradient(0) else { return }
            for o in 0..<outer { axpy(outRow, 1, ctx.grad + o * outRow, dx + o * inRow + start) }
        }
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat: no tensors")
        let first = parts[0]
        let ax = first.normalize(axis: axis)
        for p in parts {
            precondition(p.rank == first.rank && p.shape.enumerated().allSatisfy { $0.offset == ax || $0.element == first.shape[$0.offset] },
                         "concat: \(p.shape) does not match \(first.shape) outside axis \(axis)")
        }
        var outShape = first.shape
        outShape[ax] = parts.map { $0.shape[ax] }.reduce(0, +)
        let outer = first.shape[..<ax].reduce(1, *), inner = first.shape[(ax + 1)...].reduce(1, *)
        let outRow = outShape[ax] * inner
        let out = TensorStorage(count: outer * outRow)
        var offsets: [Int] = []
        var offset = 0
        for p in parts {
            offsets.append(offset)
            let row = p.shape[ax] * inner
            for o in 0..<outer { (out.base + o * outRow + offset).update(from: p.storage.base + o * row, count: row) }
            offset += row
        }
        return record("concat", shape: outShape, storage: out, inputs: parts) { ctx in
            for (i, p) in parts.enumerated() {
                guard let dp = ctx.gradient(i) else { continue }
                let row = p.shape[ax] * inner
                for o in 0..<outer { axpy(row, 1, ctx.grad + o * outRow + offsets[i], dp + o * row) }
            }
        }
    }
}
