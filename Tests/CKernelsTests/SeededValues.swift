/// Seeded values in [-scale, scale] (SplitMix64), shared by the kernel tests so that every
/// table and twin comparison draws from the same reproducible stream.
func seededValues(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { _ in
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Float(z >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}
