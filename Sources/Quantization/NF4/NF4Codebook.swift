#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The 4-bit NormalFloat data type of QLoRA, exactly as bitsandbytes defines it: 16 values,
/// quantiles of a standard normal rescaled to [-1, 1], with an exact zero.
public enum NF4Codebook {
    /// bitsandbytes' NF4 table (as Float32).
    public static let values: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// Float32 midpoints between neighbouring values: a normalized weight gets the code of the
    /// bucket it falls in, a value on a midpoint the lower one (bitsandbytes' `bucketize`).
    static let midpoints: [Float] = (0..<15).map { (values[$0] + values[$0 + 1]) / 2 }

    /// Code of a value in [-1, 1]: the number of midpoints strictly below it.
    @inline(__always)
    static func code(of x: Float) -> UInt8 {
        var lo = 0, hi = 15  // answer in 0...15
        while lo < hi {
            let mid = (lo + hi) / 2
            if midpoints[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return UInt8(lo)
    }
}

/// bitsandbytes' signed 8-bit "dynamic" map (create_dynamic_map(signed=True)), used to store
/// the per-block NF4 scales in 8 bits (double quantization). Built with the same arithmetic
/// as bitsandbytes — Float32 linspace, midpoints and powers of ten (torch multiplies a Float32
/// tensor by a scalar in Float32) — and checked against the map bitsandbytes returns.
public enum DynamicMap {
    public static let values: [Float] = {
        var data: [Float] = []
        let maxExponentBits = 7, nonSignBits = 7
        for i in 0..<maxExponentBits {
            let fractionItems = (1 << (i + nonSignBits - maxExponentBits)) + 1
            let bounds = linspace(0.1, 1, fractionItems)
            let scale = Float(pow(10.0, Double(-(maxExponentBits - 1) + i)))
            for j in 0..<(fractionItems - 1) {
                let mean = (bounds[j] + bounds[j + 1]) / 2
                data.append(scale * mean)
                data.append(-scale * mean)
            }
        }
        data.append(0)
        data.append(1)
        return data.sorted()
    }()

    /// torch.linspace in Float32: a Float32 step; the first half stepped up from `start`, the
    /// second half down from `end`, each value rounded once (as a fused multiply-add would).
    static func linspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        guard steps > 1 else { return [start] }
        let step = Double((end - start) / Float(steps - 1))
        let halfway = steps / 2
        return (0..<steps).map { i in
            i < halfway ? Float(Double(start) + step * Double(i)) : Float(Double(end) - step * Double(steps - i - 1))
        }
    }

    /// Code of a value in [-1, 1], rounded as bitsandbytes' CPU kernel does: the value goes to
    /// the nearest of 65536 evenly spaced levels, u = round((x + 1) · 32767.5), and each level
    /// has the map entry nearest to it (ties to the lower). This is not quite "nearest map
    /// entry": values within half a level of a midpoint, and the tiny entries near zero that
    /// are closer together than a level, round differently — which is why the tests pin it
    /// against bitsandbytes' own codes.
    @inline(__always)
    static func code(of x: Float) -> UInt8 {
        let level = ((x + 1) * 32767.5 + 0.5).rounded(.down)
        return levelCodes[Int(min(max(level, 0), 65535))]
    }

    /// The map entry nearest to each of the 65536 levels u / 32767.5 − 1.
    static let levelCodes: [UInt8] = {
        let map = values.map(Double.init)
        var codes = [UInt8](repeating: 0, count: 65536)
        var i = 0
        for u in 0..<65536 {
            let level = Double(u) / 32767.5 - 1
            while i < 254 && map[i + 1] <= level { i += 1 }
            var best = i
            if level >= map[0], abs(level - map[i + 1]) < abs(level - map[i]) { best = i + 1 }
            codes[u] = UInt8(best)
        }
        return codes
    }()
}
