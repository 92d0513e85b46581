import ArgumentParser
import Formats
import Foundation
import Architectures
import Export
import Training

/// Folds an adapter into its base so that tools without LoRA support load one model.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge an adapter into its base model (safetensors folder or GGUF).",
        discussion: """
        W' = W + scale·B·A for every adapted projection. --onto original adds the update to the
        source weights (decoded to f32); --onto trained adds it to the NF4/Q8_0 base the adapter
        was trained against (a checkpoint's recipe says which).

        Examples:
          lorikeet merge --adapter checkpoints/smollm2-foldoc/best.h5 --output foldoc-merged --format safetensors
          lorikeet merge --model smollm2 --adapter foldoc-lora --output foldoc.Q8_0.gguf --format gguf --quant q8_0
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case safetensors, gguf }
    enum DType: String, ExpressibleByArgument, CaseIterable { case f32, f16, bf16 }
    enum Onto: String, ExpressibleByArgument, CaseIterable { case original, trained }

    @Option(help: "The base: a GGUF file, a Hugging Face folder or 'smollm2' (default: the base a checkpoint was trained on).")
    var model: String?
    @Option(help: "A Lorikeet checkpoint (.h5) or a PEFT adapter folder.") var adapter: String
    @Option(help: "Output folder (safetensors) or .gguf file (gguf).") var output: String
    @Option(help: "safetensors: a Hugging Face folder transformers loads; gguf: a file llama.cpp and Ollama load.")
    var format: Format
    @Option(help: "safetensors weight type (f32, f16, bf16).") var dtype: DType = .f16
    @Option(help: "gguf weight type (f32, f16, q8_0, q4_0); 1-D tensors stay f32.") var quant: GGUFMergeEncoding = .f16
    @Option(help: "original: the source weights; trained: the quantized base the adapter was trained against.")
    var onto: Onto = .original
    @Flag(help: "Replace an existing output.") var force = false

    func run() throws {
        do { try AtomicFolder.checkOutput(output, replacing: force) } catch { throw CLIError(error.description) }
        let isCheckpoint = !isFolder(adapter)
        let argument = try model ?? (isCheckpoint ? checkpointBase() : nil) ?? ModelLocation.embeddedName
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw CLIError(error.description) }

        let loaded: DecoderModel, source: any WeightSource, entries: [(name: String, rank: Int)]
        let baseFiles: MergeBaseFiles, name: String, license: String
        var ggufBase: (GGUFFile, ModelConfig)?
        do {
            switch location {
            case .gguf(let path):
                let file = try GGUFFile(path: path)
                let config = try ModelConfig(gguf: file)
                source = GGUFWeightSource(file: file, config: config)
                loaded = try DecoderModel(config: config, weights: source)
                entries = try MergedWeights.entries(gguf: file)
                baseFiles = .gguf(file, config)
                ggufBase = (file, config)
                name = file.metadata["general.name"]?.string ?? (path as NSString).lastPathComponent
                license = file.metadata["general.license"]?.string ?? "unknown"
            case .huggingFaceFolder(let path):
                let folder = try SafetensorsFolder(path: path)
                source = SafetensorsWeightSource(folder: folder)
                loaded = try DecoderModel(huggingFaceFolder: path)
                entries = MergedWeights.entries(folder: folder)
                baseFiles = .huggingFace(path)
                (name, license) = Self.cardFields(path)
            }
        } catch let e as FormatError { throw CLIError(e.description) } catch let e as ModelError { throw CLIError(e.description) }

        guard format == .safetensors || ggufBase != nil else {
            throw CLIError("--format gguf needs a GGUF base (its tokenizer and chat template are carried over); merge to safetensors, then convert with llama.cpp's convert_hf_to_gguf.py")
        }
        if onto == .trained && !isCheckpoint {
            note("note: a PEFT adapter does not say which quantized base it was trained against; merging onto the source weights")
        }
        let basePath: String? = if case .gguf(let path) = location { path } else { nil }
        let what: String
        if onto == .original, isCheckpoint, let converted = try loftQConversion(location) {
            // LoftQ's base is quantized by construction; onto the source weights goes its
            // conversion to a plain rank-2r adapter (what `export` writes).
            what = try ModelSession.attach(converted, to: loaded)
        } else {
            what = try ModelSession.attachAdapter(adapter, to: loaded, basePath: basePath, basePrecision: onto == .original ? .f32 : nil)
        }
        let merged = MergedWeights(model: loaded, source: source, entries: entries)
        let provenance = MergeProvenance(baseName: name, license: license,
                                         adapter: "LoRA adapter \((adapter as NSString).lastPathComponent) (\(what)) merged onto the \(onto == .original ? "source weights" : "base it was trained against")")
        if !provenance.isPermissive {
            note("note: the base model's license is '\(license)'; the merged model is a derivative of it and carries the same license")
        }
        do {
            switch format {
            case .safetensors:
                let type: SafetensorsFile.DType = switch dtype { case .f32: .f32; case .f16: .f16; case .bf16: .bf16 }
                try AtomicFolder.create(at: output, replacing: force) { partial in
                    try merged.writeHuggingFaceFolder(to: partial, dtype: type, base: baseFiles, provenance: provenance)
                }
                note("wrote \(output)/ (model.safetensors \(dtype.rawValue), config.json, tokenizer, README.md; \(merged.adaptedModules.count) projections merged, license \(license))")
            case .gguf:
                guard let (file, config) = ggufBase else { return }
                try merged.writeGGUF(to: output, encoding: quant, base: file, config: config, provenance: provenance)
                note("wrote \(output) (\(quant.rawValue); \(merged.adaptedModules.count) projections merged, license \(license)); llama.cpp: llama-cli -m \(output)")
            }
        } catch let e as MergeError { throw CLIError(e.description) } catch let e as FormatError { throw CLIError(e.description) }
    }

    /// A LoftQ checkpoint as a plain adapter for the original weights (nil for other checkpoints).
    func loftQConversion(_ location: ModelLocation) throws -> PlainLoRAAdapter? {
        do {
            let archive = try HDF5Archive(contentsOf: adapter)
            guard let yaml = archive.strings["recipe"],
                  try Recipe(try RecipeDocument(yaml: yaml, source: adapter + " (recipe)")).lora.initialization == .loftq else { return nil }
            if case .gguf(let path) = location, let expected = archive.strings["base/sha256"], try SHA256.hexDigest(ofFile: path) != expected {
                throw CLIError("\(path) is not the base \(adapter) was trained on (SHA-256 differs); its LoftQ decomposition is recomputed from that exact base")
            }
            return try PlainLoRAAdapter(checkpoint: archive, source: adapter, originalBase: try location.load())
        } catch let e as FormatError { throw CLIError(e.description) } catch let e as RecipeError { throw CLIError(e.description) }
        catch let e as TrainingError { throw CLIError(e.description) } catch let e as ModelError { throw CLIError(e.description) }
    }

    func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The base path a checkpoint records (absent in hand-made archives).
    func checkpointBase() throws -> String? {
        guard FileManager.default.fileExists(atPath: adapter) else { throw CLIError("\(adapter): no such adapter file or folder") }
        do { return try HDF5Archive(contentsOf: adapter).strings["base/path"] } catch { throw CLIError(error.description) }
    }

    /// A Hugging Face folder's name and license: README.md's front matter when it has one.
    static func cardFields(_ folder: String) -> (name: String, license: String) {
        var name = (folder as NSString).lastPathComponent, license = "unknown"
        guard let card = try? String(contentsOfFile: folder + "/README.md", encoding: .utf8), card.hasPrefix("---") else { return (name, license) }
        for line in card.split(separator: "\n").dropFirst().prefix(while: { $0 != "---" }) {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[1].isEmpty else { continue }
            if parts[0] == "license" { license = parts[1] }
            if parts[0] == "base_model" || parts[0] == "model_name" { name = parts[1] }
        }
        return (name, license)
    }
}

extension GGUFMergeEncoding: ExpressibleByArgument {}
