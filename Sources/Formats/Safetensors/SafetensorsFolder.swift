import Foundation

/// A Hugging Face model folder: `model.safetensors`, or shards listed by
/// `model.safetensors.index.json`. Pickled checkpoints (`*.bin`, `*.pt`) are refused.
public final class SafetensorsFolder: @unchecked Sendable {
    public let path: String
    public let files: [SafetensorsFile]
    /// Tensor name → the file holding it.
    let owner: [String: SafetensorsFile]

    public init(path: String) throws(FormatError) {
        self.path = path
        let fm = FileManager.default
        let single = (path as NSString).appendingPathComponent("model.safetensors")
        let index = (path as NSString).appendingPathComponent("model.safetensors.index.json")
        var files: [SafetensorsFile] = []
        if fm.fileExists(atPath: index) {
            guard let data = fm.contents(atPath: index),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = object["weight_map"] as? [String: String] else {
                throw .malformed(path: index, reason: "not a shard index (expected a JSON object with a weight_map of tensor → file)")
            }
            for shard in Set(map.values).sorted() {
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw .malformed(path: index, reason: "shard name '\(shard)' points outside the folder")
                }
                files.append(try SafetensorsFile(path: (path as NSString).appendingPathComponent(shard)))
            }
        } else if fm.fileExists(atPath: single) {
            files = [try SafetensorsFile(path: single)]
        } else {
            let contents = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            if let pickle = contents.sorted().first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }) {
                throw .pickleRefused(path: (path as NSString).appendingPathComponent(pickle))
            }
            throw .io(path: path, reason: "no model.safetensors or model.safetensors.index.json in this folder")
        }
        var owner: [String: SafetensorsFile] = [:]
        for file in files {
            for name in file.entries.keys {
                if let other = owner[name] {
                    throw .malformed(path: file.path, reason: "tensor '\(name)' also appears in \(other.path)")
                }
                owner[name] = file
            }
        }
        self.files = files
        self.owner = owner
    }

    public func entry(_ name: String) -> (file: SafetensorsFile, entry: SafetensorsFile.Entry)? {
        guard let file = owner[name], let entry = file.entries[name] else { return nil }
        return (file, entry)
    }

    public var tensorNames: [String] { owner.keys.sorted() }
}
