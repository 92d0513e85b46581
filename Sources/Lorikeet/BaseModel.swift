import Architectures
import Formats
import Foundation
import Tokenization
import Training

/// A base model loaded for work: its decoder, tokenizer, chat template and identity.
///
/// Load one from a GGUF file (llama.cpp, Ollama, LM Studio downloads), a Hugging Face folder
/// (`config.json`, safetensors, `tokenizer.json`, and the chat template from
/// `chat_template.jinja` or `tokenizer_config.json`), or the name of the embedded default
/// (`smollm2`). The weights stay encoded as stored and are decoded panel by panel when used.
///
/// A `BaseModel` is a working copy: applying an adapter (``apply(_:onto:)``) or re-encoding the
/// base changes it in place, so load one per use. It is not safe to use from two tasks at once.
public final class BaseModel {
    /// The argument it was loaded from, resolved: a `.gguf` path or a folder.
    public let path: String
    /// Where it came from: a GGUF file or a Hugging Face folder.
    public let location: ModelLocation
    /// The decoder (architecture, weights, and any applied adapter's layers).
    public let model: DecoderModel
    /// Its tokenizer (BPE or SentencePiece, with its special tokens and BOS rule).
    public let tokenizer: any Tokenizer
    /// The model's chat template, when it has one.
    public let chatTemplate: ChatTemplate?
    /// The model's name, from its metadata or model card (else the file name).
    public let name: String
    /// The license identifier as the model states it (`apache-2.0`, `gemma`, …; "unknown" when absent).
    public let license: String
    /// The adapter applied to this copy, if any.
    public internal(set) var adapter: AppliedAdapter?
    private var cachedSHA256: String?

    /// Loads `argument`: a `.gguf` file, a Hugging Face folder, or a short name (`smollm2`, `gemma3-270m`, `qwen2.5-coder-0.5b`). Work on weights
    /// alone (merging, logits) can pass `requiresTokenizer: false` for a Hugging Face folder
    /// without tokenizer files; anything that encodes text then fails naming the folder.
    public convenience init(loading argument: String, requiresTokenizer: Bool = true) throws(LorikeetError) {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw .model(error.description) }
        try self.init(location: location, requiresTokenizer: requiresTokenizer)
    }

    /// Loads the model at `location`.
    public init(location: ModelLocation, requiresTokenizer: Bool = true) throws(LorikeetError) {
        self.location = location
        switch location {
        case .gguf(let path):
            self.path = path
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .model(error.description) }
            model = try lorikeet { try DecoderModel(ggufPath: path) }
            tokenizer = try lorikeet { try makeTokenizer(gguf: file) }
            chatTemplate = try lorikeet { try file.chatTemplateSource.map { try ChatTemplate(source: $0.source) } }
            name = file.metadata["general.name"]?.string ?? (path as NSString).lastPathComponent
            license = file.license.identifier
        case .huggingFaceFolder(let path):
            self.path = path
            let folder = HuggingFaceFolderFiles(path: path)
            model = try lorikeet { try DecoderModel(huggingFaceFolder: path) }
            do { tokenizer = try folder.tokenizer() } catch {
                guard !requiresTokenizer else { throw error }
                tokenizer = UnavailableTokenizer(reason: error.description)
            }
            chatTemplate = try folder.chatTemplate()
            (name, license) = folder.card()
        }
    }

    /// The license's kind and one-line summary, from Lorikeet's table.
    public var licenseTerms: ModelLicense { ModelLicense.identify(license) }

    /// The model's configuration (architecture and sizes).
    public var config: ModelConfig { model.config }

    /// SHA-256 of the weights: of the GGUF file, or, for a Hugging Face folder, of the list of its
    /// safetensors files' own digests (names sorted). Computed once, on first use (a large file
    /// takes a few seconds).
    public func sha256() throws(LorikeetError) -> String {
        if let cachedSHA256 { return cachedSHA256 }
        let digest: String
        switch location {
        case .gguf(let path):
            do { digest = try SHA256.hexDigest(ofFile: path) } catch { throw .model(error.description) }
        case .huggingFaceFolder(let path):
            let files: [String]
            do { files = try SafetensorsFolder(path: path).files.map(\.path).sorted() } catch { throw .model(error.description) }
            var listing = ""
            for file in files {
                do { listing += "\((file as NSString).lastPathComponent) \(try SHA256.hexDigest(ofFile: file))\n" } catch {
                    throw .model(error.description)
                }
            }
            var hasher = SHA256()
            hasher.update(Array(listing.utf8))
            digest = SHA256.hex(hasher.finalize())
        }
        cachedSHA256 = digest
        return digest
    }

    /// Name, path, hash and license: what a checkpoint records of the base it trained over.
    public func identity() throws(LorikeetError) -> BaseIdentity {
        BaseIdentity(name: name, path: path, sha256: try sha256(), license: license)
    }

    /// End-of-sequence and the chat template's end-of-turn tokens: where a reply stops.
    public var stopTokens: Set<Int32> {
        var stop = Set([tokenizer.eos].compactMap { $0 })
        for marker in ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"] {
            if let id = tokenizer.specialTokens[marker] { stop.insert(id) }
        }
        return stop
    }
}

/// A Hugging Face folder's non-weight files: tokenizer, chat template, card.
struct HuggingFaceFolderFiles {
    let path: String

    func tokenizer() throws(LorikeetError) -> any Tokenizer {
        let file = path + "/tokenizer.json"
        guard FileManager.default.fileExists(atPath: file) else {
            throw .model("\(path): no tokenizer.json; a Hugging Face model folder needs its tokenizer files (save them with the tokenizer's save_pretrained)")
        }
        return try lorikeet { try makeTokenizer(tokenizerJSON: file) }
    }

    /// `chat_template.jinja` (what transformers writes today), else `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of named templates: the one named "default").
    func chatTemplateSource() throws(LorikeetError) -> (source: String, file: String)? {
        let jinja = path + "/chat_template.jinja"
        if FileManager.default.fileExists(atPath: jinja) {
            do { return (try String(contentsOfFile: jinja, encoding: .utf8), jinja) } catch {
                throw .model("\(jinja): cannot read (\(error.localizedDescription))")
            }
        }
        let configPath = path + "/tokenizer_config.json"
        guard FileManager.default.fileExists(atPath: configPath) else { return nil }
        let config: JSONValue
        do { config = try JSONValue(contentsOf: configPath) } catch { throw .model(error.description) }
        switch config["chat_template"] {
        case .string(let s)?: return (s, configPath)
        case .array(let named)?:
            let chosen = named.first { $0["name"]?.string == "default" }?["template"]?.string ?? named.first?["template"]?.string
            return chosen.map { ($0, configPath) }
        default: return nil
        }
    }

    func chatTemplate() throws(LorikeetError) -> ChatTemplate? {
        guard let (source, file) = try chatTemplateSource() else { return nil }
        do { return try ChatTemplate(source: source) } catch { throw .model("\(file): chat template: \(error.description)") }
    }

    /// Name and license from README.md's front matter (`license:`, with `license_name:` when
    /// that is "other"; `base_model:`/`model_name:`), else config.json's `license`.
    func card() -> (name: String, license: String) {
        var name = (path as NSString).lastPathComponent
        var stated: String?, statedName: String?
        if let card = try? String(contentsOfFile: path + "/README.md", encoding: .utf8), card.hasPrefix("---") {
            for line in card.split(separator: "\n").dropFirst().prefix(while: { $0 != "---" }) {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[1].isEmpty else { continue }
                let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                if parts[0] == "license" { stated = value }
                if parts[0] == "license_name" { statedName = value }
                if parts[0] == "base_model" || parts[0] == "model_name" { name = value }
            }
        }
        if stated == nil, let config = try? JSONValue(contentsOf: path + "/config.json") { stated = config["license"]?.string }
        return (name, ModelLicense.identify(stated, name: statedName).identifier)
    }
}

/// Stands in for the tokenizer of a Hugging Face folder that has none, when only its weights
/// are needed: encoding fails with the reason, decoding gives nothing.
struct UnavailableTokenizer: Tokenizer {
    let reason: String
    var tokens: [String] { [] }
    var bos: Int32? { nil }
    var eos: Int32? { nil }
    var addBOS: Bool { false }
    var specialTokens: [String: Int32] { [:] }
    func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) throws(TokenizerError) -> [Int32] { throw .unsupported(reason) }
    func decodeBytes(_ ids: [Int32]) -> [UInt8] { [] }
    func tokenBytes(_ id: Int32) -> [UInt8] { [] }
    func decodedLengths(_ ids: [Int32]) -> [Int] { ids.map { _ in 0 } }
    var fingerprint: [UInt8] { [UInt8](repeating: 0, count: 32) }
}
