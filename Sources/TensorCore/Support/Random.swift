/// A seeded, splittable pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every stochastic piece of Lorikeet — initialisation, dropout, shuffling, sampling —
/// takes one of these as an argument; there is no global generator. The full state is
/// four words, so checkpoints can save and restore it exactly.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Equatable {
    public internal(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// Restores a state saved from `state` (checkpoint resume).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) { self.state = state }

    public static func == (a: Self, b: Self) -> Bool { a.state == b.state }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 random bits (every Float32 step in that range equally likely).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Standard normal (Box–Muller; uses two uniforms per call, keeps no cached spare so the
    /// state alone determines the stream).
    public mutating func nextNormal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// A generator for the use named by the keys `a`, `b` (a training step and a micro-batch),
    /// derived from this state without advancing it: the same state and keys always give the
    /// same stream, whichever process asks and whatever it drew before; other keys give
    /// unrelated streams.
    public func derived(_ a: UInt64, _ b: UInt64) -> RandomGenerator {
        func mix(_ x: UInt64) -> UInt64 {  // SplitMix64's finaliser
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var h = mix(state.0)
        h = mix(h ^ state.1)
        h = mix(h ^ state.2)
        h = mix(h ^ state.3)
        h = mix(h ^ a)
        h = mix(h ^ b)
        return RandomGenerator(seed: h)
    }

    /// An independent generator derived from this one (e.g. one per data-loader worker).
    public mutating func split() -> RandomGenerator { RandomGenerator(seed: next()) }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
