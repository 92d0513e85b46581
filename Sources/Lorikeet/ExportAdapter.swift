import Architectures
import Export
import Formats
import Foundation
import Training

/// Writing an adapter alone for the tools people serve models with: a PEFT folder (Hugging
/// Face), a llama.cpp LoRA GGUF (`llama-cli --lora`), or a folder with that GGUF and an Ollama
/// Modelfile.
public struct ExportRequest: Sendable {
    /// `peft`: a PEFT folder; `gguf`: a llama.cpp LoRA file; `ollama`: that file and a Modelfile.
    public enum Format: String, Sendable, CaseIterable { case peft, gguf, ollama }

    /// A Lorikeet checkpoint or a PEFT folder.
    public var adapter: String
    /// What to write.
    public var format: Format
    /// Output folder (peft, ollama) or `.gguf` file (gguf).
    public var output: String
    /// The base the adapter applies to (gguf and ollama need its layout; a PiSSA/LoftQ checkpoint
    /// needs its exact weights to be converted); nil: the base a checkpoint records, else `smollm2`.
    public var model: String?
    /// Replace an existing output (otherwise it is refused, nothing written).
    public var force = false

    /// A request to export `adapter` as `format` into `output`.
    public init(adapter: String, format: Format, output: String, model: String? = nil) {
        self.adapter = adapter
        self.format = format
        self.output = output
        self.model = model
    }
}

/// What an export wrote.
public struct ExportResult: Sendable {
    /// Paths written.
    public var files: [String]
    /// Adapter tensors written.
    public var tensors: Int
    /// The base GGUF a LoRA GGUF is meant for.
    public var basePath: String?
    /// The base model's license as recorded.
    public var license: String
    /// False when the base's license is not a permissive one (it governs the adapter's use).
    public var licenseIsPermissive: Bool
    /// The license's kind and one-line summary (what every command prints).
    public var licenseTerms: ModelLicense { ModelLicense.identify(license) }
    /// The adapter was trained over a rewritten base (PiSSA/LoftQ) and converted for the original.
    public var converted: Bool
    /// The base file differs from the one a checkpoint records (its layout must still match).
    public var baseDiffers: Bool
}

extension ExportRequest {
    /// Writes the export; a PiSSA/LoftQ checkpoint is converted for the original base first.
    public func run() throws(LorikeetError) -> ExportResult {
        do { try AtomicFolder.checkOutput(output, replacing: force) } catch { throw .export(error.description) }
        let source = try AdapterSource.load(adapter)
        let baseArgument = model ?? source.recordedBasePath ?? ModelLocation.embeddedName
        let plain: PlainLoRAAdapter
        var converted = false
        switch source {
        case .peft(let p, _): plain = p
        case .checkpoint(let checkpoint, let path):
            if PlainLoRAAdapter.needsOriginalBase(checkpoint) {
                // The exact base the run trained on, loaded afresh: the decomposition is recomputed.
                let original = try BaseModel(loading: baseArgument, requiresTokenizer: false)
                try original.checkBase(checkpoint, adapterPath: path)
                plain = try lorikeet { try PlainLoRAAdapter(checkpoint: checkpoint, source: path, originalBase: original.model) }
                converted = true
            } else {
                plain = try lorikeet { try PlainLoRAAdapter(checkpoint: checkpoint, source: path) }
            }
        }
        let permissive = MergeProvenance(baseName: plain.baseName, license: plain.license, adapter: "").isPermissive
        do {
            switch format {
            case .peft:
                let export = try PEFTExport(plain)
                // The folder appears whole under its name, or not at all.
                try AtomicFolder.create(at: output, replacing: force) { partial in try export.write(to: partial) }
                return ExportResult(files: ["adapter_config.json", "adapter_model.safetensors", "README.md"].map { output + "/" + $0 },
                                    tensors: export.tensors.count, basePath: nil, license: plain.license, licenseIsPermissive: permissive,
                                    converted: converted, baseDiffers: false)
            case .gguf, .ollama:
                guard case .gguf = try ModelLocation.resolve(baseArgument) else {
                    throw LorikeetError.invalidRequest("a llama.cpp LoRA is written for a GGUF base; \(baseArgument) is a Hugging Face folder (pass --model BASE.gguf)")
                }
                let base = try BaseModel(loading: baseArgument)
                guard case .gguf(let basePath) = base.location else { throw LorikeetError.invalidRequest("\(baseArgument): not a GGUF base") }
                let differs = try source.checkpoint.map { try !$0.base.sha256.isEmpty && base.sha256() != $0.base.sha256 } ?? false
                let export = try GGUFLoRAExport(plain, base: GGUFFile(path: basePath))
                if format == .gguf {
                    try export.write(to: output)
                    return ExportResult(files: [output], tensors: export.tensors.count, basePath: basePath, license: plain.license,
                                        licenseIsPermissive: permissive, converted: converted, baseDiffers: differs)
                }
                let stops = ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"].filter { base.tokenizer.specialTokens[$0] != nil }
                let modelfile = """
                # \(plain.baseName) + a LoRA adapter exported by Lorikeet (base license: \(plain.license)).
                # Ollama takes the chat template from the base GGUF's metadata.
                # Create: ollama create NAME -f \(output)/Modelfile
                FROM \(basePath)
                ADAPTER ./adapter.gguf
                \(stops.map { "PARAMETER stop \"\($0)\"" }.joined(separator: "\n"))

                """
                try AtomicFolder.create(at: output, replacing: force) { partial in
                    try export.write(to: partial + "/adapter.gguf")
                    try AtomicFile.write(Data(modelfile.utf8), to: partial + "/Modelfile")
                }
                return ExportResult(files: [output + "/adapter.gguf", output + "/Modelfile"], tensors: export.tensors.count, basePath: basePath,
                                    license: plain.license, licenseIsPermissive: permissive, converted: converted, baseDiffers: differs)
            }
        } catch { throw LorikeetError.from(error) }
    }
}
