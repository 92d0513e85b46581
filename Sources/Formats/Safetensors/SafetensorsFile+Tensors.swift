import TensorCore

extension SafetensorsFile {
    /// Every tensor decoded to Float32 (for small files: adapters, fixtures; model weights are
    /// read in place instead).
    public func tensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, entry) in entries {
            let storage = TensorStorage(count: entry.elementCount)
            decode(entry, elements: 0..<entry.elementCount, into: storage.base)
            out[name] = Tensor(shape: entry.shape, storage: storage)
        }
        return out
    }
}
