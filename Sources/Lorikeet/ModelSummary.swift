import Architectures
import Formats
import Foundation
import Tokenization
import Training

/// What a model file or folder holds, read from its headers only (nothing is decoded): what
/// `lorikeet inspect` shows.
public struct ModelSummary: Sendable {
    /// The kind of file.
    public enum Container: Sendable, Equatable {
        case gguf(version: UInt32)
        /// A Hugging Face folder and its safetensors files.
        case huggingFaceFolder(files: Int)
    }

    /// One stored tensor.
    public struct TensorEntry: Sendable, Equatable {
        /// The tensor's name in the file.
        public var name: String
        /// Its shape, as the file gives it.
        public var shape: [Int]
        /// The encoding: a ggml type (`Q4_K`, `F16`, …) or a safetensors dtype.
        public var encoding: String
        /// Bytes it takes in the file.
        public var bytes: Int
    }

    /// The resolved path.
    public var path: String
    /// GGUF or a Hugging Face folder.
    public var container: Container
    /// Bytes on disk (the GGUF file; for a folder, its safetensors files).
    public var bytes: Int
    /// The model's name from its metadata or card.
    public var name: String?
    /// Who published it, when the file says.
    public var organization: String?
    /// The license as the model states it, or nil when it does not.
    public var license: String?
    /// The license's kind and one-line summary, from Lorikeet's table.
    public var licenseTerms: ModelLicense { ModelLicense.identify(license) }
    /// The decoder's configuration, or why it cannot be read.
    public var config: Result<ModelConfig, ModelError>
    /// The architecture name the file declares (even when Lorikeet does not support it).
    public var declaredArchitecture: String?
    /// Parameters stored.
    public var parameters: Int
    /// Every stored tensor, in file order.
    public var tensors: [TensorEntry]
    /// Whether the output head is the embedding itself.
    public var tiedHead: Bool
    /// "gpt2 (pre-tokenizer smollm), 49152 tokens, bos 1, eos 2", or what tokenizer files exist.
    public var tokenizer: String
    /// Characters of the chat template, when there is one.
    public var chatTemplateCharacters: Int?
    /// The file has no template and Lorikeet uses its built-in one for the architecture.
    public var chatTemplateIsBuiltIn = false

    /// Encodings by total bytes, largest first.
    public var encodings: [(encoding: String, tensors: Int, bytes: Int)] {
        var mix: [String: (Int, Int)] = [:]
        for t in tensors { mix[t.encoding, default: (0, 0)].0 += 1; mix[t.encoding, default: (0, 0)].1 += t.bytes }
        return mix.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes }
    }

    /// Reads the summary of `argument`: a `.gguf` file, a Hugging Face folder or a short name (`smollm2`, `gemma3-270m`, `qwen2.5-coder-0.5b`).
    public init(inspecting argument: String) throws(LorikeetError) {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw .model(error.description) }
        switch location {
        case .gguf(let path):
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .model(error.description) }
            let m = file.metadata
            self.path = path
            container = .gguf(version: file.version)
            bytes = file.fileSize
            name = m["general.name"]?.string
            organization = m["general.organization"]?.string
            license = m["general.license"] == nil ? nil : file.license.identifier
            declaredArchitecture = m["general.architecture"]?.string
            do { config = .success(try ModelConfig(gguf: file)) } catch { config = .failure(error) }
            tensors = file.tensors.map { TensorEntry(name: $0.name, shape: $0.shape, encoding: $0.type.name, bytes: $0.range.count) }
            parameters = file.tensors.reduce(0) { $0 + $1.elementCount }
            tiedHead = file.tensor("output.weight") == nil
            let count = m["tokenizer.ggml.tokens"]?.array?.count ?? 0
            tokenizer = "\(m["tokenizer.ggml.model"]?.string ?? "none")\(m["tokenizer.ggml.pre"]?.string.map { " (pre-tokenizer \($0))" } ?? ""), \(count) tokens, bos \(m["tokenizer.ggml.bos_token_id"]?.int.map(String.init) ?? "-"), eos \(m["tokenizer.ggml.eos_token_id"]?.int.map(String.init) ?? "-")"
            chatTemplateCharacters = file.chatTemplateSource?.source.count
            chatTemplateIsBuiltIn = file.chatTemplateSource?.isBuiltIn ?? false
        case .huggingFaceFolder(let path):
            let folder: SafetensorsFolder
            do { folder = try SafetensorsFolder(path: path) } catch { throw .model(error.description) }
            self.path = path
            container = .huggingFaceFolder(files: folder.files.count)
            let entries = folder.tensorNames.compactMap { folder.entry($0)?.entry }
            bytes = entries.reduce(0) { $0 + $1.range.count }
            let files = HuggingFaceFolderFiles(path: path)
            let card = files.card()
            name = card.name
            organization = nil
            license = card.license == "unknown" ? nil : card.license
            let json: JSONValue?
            do { json = try JSONValue(contentsOf: path + "/config.json") } catch { json = nil }
            declaredArchitecture = json?["model_type"]?.string
            if let json {
                do { config = .success(try ModelConfig(huggingFace: json, path: path + "/config.json")) } catch { config = .failure(error) }
            } else {
                config = .failure(.unreadable("\(path)/config.json: not readable JSON"))
            }
            tensors = entries.map { TensorEntry(name: $0.name, shape: $0.shape, encoding: $0.dtype.rawValue, bytes: $0.range.count) }
            parameters = entries.reduce(0) { $0 + $1.elementCount }
            tiedHead = !folder.tensorNames.contains("lm_head.weight")
            let fm = FileManager.default
            tokenizer = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"].filter { fm.fileExists(atPath: path + "/" + $0) }
                .joined(separator: ", ").nonEmpty ?? "no tokenizer files"
            chatTemplateCharacters = (try? files.chatTemplateSource())?.map { $0.source.count }
        }
    }
}

extension ModelConfig {
    /// One line: family, sizes, and the named variations that set it apart.
    public var summary: String {
        var parts = ["\(family.rawValue): \(layerCount) layers, hidden \(hiddenSize)",
                     "\(headCount) heads (\(kvHeadCount) key/value, head dim \(headDim))",
                     "MLP \(intermediateSize)", "vocab \(vocabSize)", "context \(maxPositions)",
                     String(format: "RoPE θ %g", ropeTheta)]
        if let w = slidingWindow, windowPattern != .none { parts.append("sliding window \(w)") }
        return (parts + variations).joined(separator: ", ")
    }

    /// The named variations this configuration turns on.
    public var variations: [String] {
        var out: [String] = []
        switch ropeScaling {
        case nil: break
        case .linear(let factor): out.append(String(format: "RoPE linear scaling ×%g", factor))
        case .llama3(let factor, _, _, _): out.append(String(format: "Llama 3 RoPE scaling ×%g", factor))
        case .frequencyFactors(let factors): out.append("RoPE frequency factors (\(factors.count), rope_freqs)")
        }
        if partialRotaryFactor < 1 { out.append(String(format: "rotary on %g of each head", partialRotaryFactor)) }
        if attentionBias { out.append("QKV bias") }
        if qkNorm { out.append("QK-norm") }
        if fusedQKV { out.append("fused QKV") }
        if fusedGateUp { out.append("fused gate-up") }
        if activation == .geluTanh { out.append("GeGLU") }
        if normWeightOffset != 0 { out.append(String(format: "norms scale by %g+w", normWeightOffset)) }
        if scaleEmbeddings { out.append("scaled embeddings") }
        if sandwichNorms { out.append("post-attention/MLP norms") }
        if let cap = attentionSoftcap { out.append(String(format: "attention soft-cap %g", cap)) }
        if let cap = finalLogitSoftcap { out.append(String(format: "logit soft-cap %g", cap)) }
        return out
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
