import Architectures
import Export
import Formats
import Foundation
import Training

/// Folding an adapter into its base, so tools without LoRA support load one model: a Hugging
/// Face folder (transformers) or a GGUF file (llama.cpp, Ollama).
public struct MergeRequest: Sendable {
    /// `safetensors`: a Hugging Face folder; `gguf`: one GGUF file.
    public enum Format: String, Sendable, CaseIterable { case safetensors, gguf }

    /// A Lorikeet checkpoint or a PEFT folder.
    public var adapter: String
    /// The base; nil: the base a checkpoint records, else `smollm2`.
    public var model: String?
    /// Output folder (safetensors) or `.gguf` file.
    public var output: String
    /// What to write.
    public var format: Format
    /// Weight type of a safetensors folder.
    public var dtype = SafetensorsFile.DType.f16
    /// Encoding of a GGUF's matrices (1-D tensors stay F32).
    public var quant = GGUFMergeEncoding.f16
    /// Which weights the update W + scale·B·A is added to (see ``AdapterBase``).
    public var onto = AdapterBase.trained
    /// Replace an existing output.
    public var force = false
    /// After a quantized GGUF merge, measure what quantizing kept of the adapter (``MergeQuality``).
    public var measureQuality = true
    /// The JSONL file the quality report evaluates on; nil: a checkpoint's validation set.
    public var evalData: String?
    /// Evaluate only the first N examples of `evalData` (0: all).
    public var evalLimit = 0

    /// A request to merge `adapter` into its base and write `output` as `format`.
    public init(adapter: String, model: String? = nil, output: String, format: Format) {
        self.adapter = adapter
        self.model = model
        self.output = output
        self.format = format
    }
}

/// What a merge wrote.
public struct MergeResult: Sendable {
    public var output: String
    /// What was written.
    public var format: MergeRequest.Format
    /// The adapter as applied before merging.
    public var adapter: AppliedAdapter
    /// Projections whose weight received the update.
    public var mergedProjections: Int
    /// The base model's name.
    public var baseName: String
    /// The base model's license, which the merged model carries.
    public var license: String
    /// False when the base's license is not a permissive one (the merged model carries it).
    public var licenseIsPermissive: Bool
    /// The license's kind and one-line summary (what every command prints).
    public var licenseTerms: ModelLicense { ModelLicense.identify(license) }

    /// Losses of base, adapter and merged file, for a quantized GGUF merge with data to measure on.
    public var quality: MergeQuality?
    /// Why there is no quality report, when one was asked for and could not be made.
    public var qualityUnavailable: String?
}

extension MergeRequest {
    /// Writes the merged model whole or not at all; an existing output needs `force`.
    public func run() throws(LorikeetError) -> MergeResult {
        do { try AtomicFolder.checkOutput(output, replacing: force) } catch { throw .export(error.description) }
        let source = try AdapterSource.load(adapter)
        let base = try BaseModel(loading: model ?? source.recordedBasePath ?? ModelLocation.embeddedName, requiresTokenizer: false)
        let weightSource: any WeightSource, entries: [(name: String, rank: Int)], baseFiles: MergeBaseFiles
        var ggufBase: (GGUFFile, ModelConfig)?
        switch base.location {
        case .gguf(let path):
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .model(error.description) }
            weightSource = GGUFWeightSource(file: file, config: base.config)
            entries = try lorikeet { try MergedWeights.entries(gguf: file, config: base.config) }
            baseFiles = .gguf(file, base.config)
            ggufBase = (file, base.config)
        case .huggingFaceFolder(let path):
            let folder: SafetensorsFolder
            do { folder = try SafetensorsFolder(path: path) } catch { throw .model(error.description) }
            weightSource = SafetensorsWeightSource(folder: folder)
            entries = MergedWeights.entries(folder: folder)
            baseFiles = .huggingFace(path)
        }
        guard format == .safetensors || ggufBase != nil else {
            throw .invalidRequest("a GGUF merge needs a GGUF base (its tokenizer and chat template are carried over); merge to safetensors, then convert with llama.cpp's convert_hf_to_gguf.py")
        }
        let applied = try base.apply(source, onto: onto)
        let merged = MergedWeights(model: base.model, source: weightSource, entries: entries)
        let provenance = MergeProvenance(
            baseName: base.name, license: base.license,
            adapter: "LoRA adapter \((adapter as NSString).lastPathComponent) (r=\(applied.rank), alpha=\(applied.alpha), \(applied.modules) modules) merged onto the \(onto == .original ? "source weights" : "base it was trained against (\(applied.baseWeights))")")
        do {
            switch format {
            case .safetensors:
                try AtomicFolder.create(at: output, replacing: force) { partial in
                    try merged.writeHuggingFaceFolder(to: partial, dtype: dtype, base: baseFiles, provenance: provenance)
                }
            case .gguf:
                guard let (file, config) = ggufBase else { break }
                try merged.writeGGUF(to: output, encoding: quant, base: file, config: config, provenance: provenance)
            }
        } catch { throw .export(LorikeetError.from(error).description) }
        var result = MergeResult(output: output, format: format, adapter: applied, mergedProjections: merged.adaptedModules.count,
                                 baseName: base.name, license: base.license, licenseIsPermissive: provenance.isPermissive)
        // The file is written either way; a report that cannot be made (a PEFT adapter without
        // --eval-data, a checkpoint whose data moved) is said, not an error.
        if format == .gguf, measureQuality, quant != .f32, quant != .f16 {
            do { result.quality = try qualityReport() } catch { result.qualityUnavailable = error.description }
        }
        return result
    }
}
