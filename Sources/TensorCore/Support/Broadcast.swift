/// Broadcasting in NumPy's sense: shapes align from the right; a dimension of 1 (or a
/// missing one) stretches to match.
enum Broadcast {
    static func shape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            precondition(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) do not broadcast")
            out[i] = max(da, db)
        }
        return out
    }

    /// Strides of `shape` when read as `outShape` (0 along stretched dimensions).
    static func strides(of shape: [Int], as outShape: [Int]) -> [Int] {
        let own = Tensor.strides(shape)
        let lead = outShape.count - shape.count
        return (0..<outShape.count).map { i in
            i < lead || shape[i - lead] == 1 ? 0 : own[i - lead]
        }
    }

    /// Calls `inner(offsetA, offsetB, offsetOut, count, strideA, strideB)` for each run of the
    /// last dimension of `outShape`; the out run is contiguous.
    @inline(__always)
    static func forEachRow(_ outShape: [Int], _ sa: [Int], _ sb: [Int],
                           _ inner: (Int, Int, Int, Int, Int, Int) -> Void) {
        let rank = outShape.count
        if rank == 0 { inner(0, 0, 0, 1, 0, 0); return }
        let last = outShape[rank - 1]
        let rows = Tensor.elementCount(Array(outShape.dropLast()))
        guard rows > 0, last > 0 else { return }
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var offA = 0, offB = 0
        for row in 0..<rows {
            inner(offA, offB, row * last, last, sa[rank - 1], sb[rank - 1])
            // Odometer increment over the leading dimensions.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                offA += sa[d]; offB += sb[d]
                if index[d] < outShape[d] { break }
                offA -= sa[d] * index[d]; offB -= sb[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// grad (shaped `outShape`) summed down to `shape` and added into `target`.
    static func accumulate(_ grad: UnsafePointer<Float>, outShape: [Int],
                           into target: UnsafeMutablePointer<Float>, shape: [Int]) {
        if shape == outShape {
            axpy(Tensor.elementCount(shape), 1, grad, target)
            return
        }
        let st = strides(of: shape, as: outShape)
        forEachRow(outShape, st, st) { offT, _, offG, count, strideT, _ in
            if strideT == 0 {
                var sum: Float = 0
                for j in 0..<count { sum += grad[offG + j] }
                target[offT] += sum
            } else {
                for j in 0..<count { target[offT + j * strideT] += grad[offG + j] }
            }
        }
    }
}
