import Training
import Formats
import Foundation
import Architectures
import Quantization
import TensorCore

extension MergedWeights {
    /// Writes a GGUF v3 file at `path` (atomically) with `base`'s metadata carried over —
    /// tokenizer, chat template, license, name, `rope_freqs` — and `general.file_type` set.
    /// Each tensor's type is `encoding.tensorTypes` (llama.cpp's choice per tensor; 1-D
    /// tensors stay F32 as llama.cpp's converter keeps them), Q/K rows go back to the GGUF's
    /// RoPE order and Gemma's norms to the stored 1 + w. Quantized matrices are encoded from
    /// the F16-rounded merged weights, so they equal llama.cpp quantizing the F16 merge.
    public func writeGGUF(to path: String, encoding: GGUFMergeEncoding, base: GGUFFile, config: ModelConfig,
                          provenance: MergeProvenance) throws(ExportError) {
        var payloads: [GGUFTensorPayload] = []
        let types = encoding.tensorTypes(base.tensors)
        for (info, type) in zip(base.tensors, types) {
            if Self.ggufConfigurationTensors.contains(info.name) {
                guard case .frequencyFactors(let factors) = config.ropeScaling, info.name == "rope_freqs.weight" else {
                    throw .unsupported("\(base.path): tensor '\(info.name)' does not match the model's configuration")
                }
                payloads.append(GGUFTensorPayload(name: info.name, f32: Tensor(shape: [factors.count], scalars: factors)))
                continue
            }
            guard let name = GGUFWeightSource.huggingFaceName(info.name, config: config) else {
                throw .unsupported("\(base.path): tensor '\(info.name)' has no Hugging Face counterpart Lorikeet knows")
            }
            var t: Tensor
            do { t = try tensor(name, rank: info.dimensions.count) } catch { throw .model(error) }
            if t.rank == 2, name.hasSuffix(".weight"),
               let heads = GGUFWeightSource.rotaryPermutedHeads(String(name.dropLast(".weight".count)), config: config) {
                t = Self.ggufRowOrder(t, heads: heads)
            }
            // Gemma's norm scales go back to the converter's stored 1 + w.
            if t.rank == 1, name.hasSuffix("norm.weight"), let offset = GGUFWeightSource.storedNormOffset(config) {
                t = Tensor(shape: t.shape, scalars: t.scalars.map { $0 + offset })
            }
            do { payloads.append(try Self.encode(t, name: info.name, as: t.rank == 1 ? .f32 : type)) } catch { throw .format(error) }
        }
        var metadata: [(String, GGUFValue)] = []
        for key in base.metadataKeys where key != "general.alignment" {
            guard let value = base.metadata[key] else { continue }
            if key == "general.file_type", let fileType = encoding.fileType { metadata.append((key, .uint32(fileType))) }
            else { metadata.append((key, value)) }
        }
        if base.metadata["general.file_type"] == nil, let fileType = encoding.fileType {
            metadata.append(("general.file_type", .uint32(fileType)))
        }
        if base.metadata["general.license"] == nil { metadata.append(("general.license", .string(provenance.license))) }
        do { try GGUFFile.write(metadata: metadata, encoded: payloads, alignment: base.alignment, to: path) } catch { throw .format(error) }
    }

    /// `t` [O, I] with each head's rows moved from Hugging Face's order to the GGUF's.
    static func ggufRowOrder(_ t: Tensor, heads: Int) -> Tensor {
        let (rows, columns) = (t.shape[0], t.shape[1]), headRows = rows / max(heads, 1)
        let out = TensorStorage(count: t.count)
        for row in 0..<rows {
            let to = GGUFWeightSource.ggufRow(ofHuggingFaceRow: row, headRows: headRows)
            (out.base + to * columns).update(from: t.storage.base + row * columns, count: columns)
        }
        return Tensor(shape: t.shape, storage: out)
    }

    /// One tensor [rows, columns] as `type`. Anything but F32 starts from the F16-rounded
    /// values (F16 stores exactly those; the block types quantize them as llama.cpp quantizes
    /// an F16 file); the block encoders are byte-equal to ggml's reference quantizers.
    static func encode(_ t: Tensor, name: String, as type: GGMLType) throws(FormatError) -> GGUFTensorPayload {
        if type == .f32 { return GGUFTensorPayload(name: name, f32: t) }
        let rounded = t.scalars.map { Float(Float16($0)) }
        let columns = t.rank == 1 ? t.count : t.shape[t.rank - 1]
        let bytes = try rounded.withUnsafeBufferPointer { values throws(FormatError) in
            try type.encode(values, columns: columns, tensor: name)
        }
        return GGUFTensorPayload(name: name, shape: t.shape, type: type, bytes: bytes)
    }
}
