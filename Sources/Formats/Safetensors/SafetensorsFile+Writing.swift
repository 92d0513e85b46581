import Foundation
import TensorCore

extension SafetensorsFile {
    /// Writes `tensors` as F32 to `path` atomically (a temporary file, synced, then renamed):
    /// header JSON with sorted names and `__metadata__`, padded with spaces to 8 bytes as the
    /// reference writer does, then the data in header order.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws(FormatError) {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]] as [String: Any]
            offset += t.count * 4
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
            t.withUnsafeBufferPointer { values in
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        try AtomicFile.write(out, to: path)
    }
}

/// Whole-file writes that never leave a partial file under the real name.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws(FormatError) {
        let partial = path + ".partial-\(getpid())"
        guard FileManager.default.createFile(atPath: partial, contents: data) else {
            throw .io(path: path, reason: "cannot write \(partial) (does the folder exist, is the disk full?)")
        }
        let fd = open(partial, O_RDONLY)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { close(fd) }
            unlink(partial)
            throw .io(path: path, reason: "cannot sync \(partial)")
        }
        close(fd)
        guard rename(partial, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            throw .io(path: path, reason: "cannot rename \(partial) into place (\(reason))")
        }
    }
}
