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

/// `count` ggml blocks of `blockBytes` SplitMix64 bytes, with half-precision scales of mixed
/// sign and size (exponent 5…14, ≈ 1e-4 … 0.5) at `scaleOffsets`; block 1's first scale is a
/// subnormal half and block 2's is zero, the two cases a kernel's scale conversion can miss.
func seededBlocks(blockBytes: Int, scaleOffsets: [Int], count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    var bytes = (0..<(count * blockBytes)).map { _ in UInt8(truncatingIfNeeded: next()) }
    for k in 0..<count {
        for (s, offset) in scaleOffsets.enumerated() {
            var half = UInt16((next() % 10 + 5) << 10) | UInt16(next() & 0x3FF) | (next() & 1 == 0 ? 0 : 0x8000)
            if k == 1 && s == 0 { half = 0x0123 }  // subnormal
            if k == 2 && s == 0 { half = 0 }
            bytes[k * blockBytes + offset] = UInt8(half & 0xFF)
            bytes[k * blockBytes + offset + 1] = UInt8(half >> 8)
        }
    }
    return bytes
}

/// Block-kernel inputs: multiples of 1/250 in [-4, 4] (an LCG), exact in Float and Double.
func seededBlockInputs(_ n: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<n).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 250
    }
}
