import Foundation
import TensorCore

extension SafetensorsFile {
    /// Writes `tensors` as F32 to `path` atomically (a temporary file, synced, then renamed):
    /// header JSON with sorted names and `__metadata__`, padded with spaces to 8 bytes as the
    /// reference writer does, then the data in header order.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws(FormatError) {
        try write(tensors, dtype: .f32, metadata: metadata, to: path)
    }

    /// Writes `tensors` in `dtype` (F16 and BF16 rounded to nearest even, as torch's `.to()`
    /// does), atomically, in the same layout.
    public static func write(_ tensors: [String: Tensor], dtype: DType, metadata: [String: String] = [:], to path: String) throws(FormatError) {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.count * dtype.size]] as [String: Any]
            offset += t.count * dtype.size
        }
        var json: Data
        do { json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) } catch {
            throw .malformed(path: path, reason: "cannot encode the header (\(error.localizedDescription))")
        }
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var out = Data()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            guard let t = tensors[name] else { continue }
            t.withUnsafeBufferPointer { HalfPrecision.encode($0, dtype: dtype, into: &out) }
        }
        try AtomicFile.write(out, to: path)
    }
}

extension HalfPrecision {
    /// Float32 to `dtype`, little-endian, appended to `out`.
    static func encode(_ values: UnsafeBufferPointer<Float>, dtype: SafetensorsFile.DType, into out: inout Data) {
        switch dtype {
        case .f32:
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .f16:
            for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .bf16:
            for v in values { withUnsafeBytes(of: bfloat16Bits(v).littleEndian) { out.append(contentsOf: $0) } }
        }
    }

    /// bfloat16 bits of `v`, rounded to nearest even (NaN stays a quiet NaN).
    public static func bfloat16Bits(_ v: Float) -> UInt16 {
        if v.isNaN { return 0x7FC0 }
        let bits = v.bitPattern
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }
}

/// Whole-file writes that never leave a partial file under the real name: the bytes go to
/// `<path>.partial-<pid>` through plain write(2) calls (so a full disk is an error, not a
/// short file), are synced, then renamed; on any failure the partial file is removed.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws(FormatError) {
        let partial = path + ".partial-\(getpid())"
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw .io(path: path, reason: "cannot create \(partial) (\(String(cString: strerror(errno)))); does the folder exist?")
        }
        var failure: String?
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, base + done, min(raw.count - done, 1 << 26))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    failure = n < 0 ? String(cString: strerror(errno)) : "no progress"
                    return
                }
                done += n
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = "sync failed (\(String(cString: strerror(errno))))" }
        if close(fd) != 0 && failure == nil { failure = "close failed (\(String(cString: strerror(errno))))" }
        if let failure {
            unlink(partial)
            throw .io(path: path, reason: "cannot write \(data.count) bytes (\(failure)); nothing was left under this name")
        }
        guard rename(partial, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw .io(path: path, reason: "cannot rename \(partial) into place (\(reason))")
        }
    }
}
