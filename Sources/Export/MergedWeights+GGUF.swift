import Training
import Formats
import Foundation
import Architectures
import Quantization
import TensorCore

/// The ggml encodings a merged GGUF can be written in.
public enum GGUFMergeEncoding: String, CaseIterable, Sendable {
    case f32, f16, q8_0, q4_0

    var type: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        }
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0).
    var fileType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q8_0: return 7
        }
    }
}

extension MergedWeights {
    /// Writes a GGUF v3 file at `path` (atomically) with `base`'s metadata carried over —
    /// tokenizer, chat template, license, name, `rope_freqs` — and `general.file_type` set. Every 2-D tensor
    /// is encoded in `encoding` (F16 when its width is not a multiple of the 32-value block),
    /// 1-D tensors stay F32 as llama.cpp's converter keeps them, Q/K rows go back to the
    /// GGUF's RoPE order and Gemma's norms to the stored 1 + w.
    public func writeGGUF(to path: String, encoding: GGUFMergeEncoding, base: GGUFFile, config: ModelConfig,
                          provenance: MergeProvenance) throws(ExportError) {
        var payloads: [GGUFTensorPayload] = []
        for info in base.tensors {
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
            payloads.append(Self.encode(t, name: info.name, as: encoding))
        }
        var metadata: [(String, GGUFValue)] = []
        for key in base.metadataKeys where key != "general.alignment" {
            guard let value = base.metadata[key] else { continue }
            metadata.append((key, key == "general.file_type" ? .uint32(encoding.fileType) : value))
        }
        if base.metadata["general.file_type"] == nil { metadata.append(("general.file_type", .uint32(encoding.fileType))) }
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

    /// One tensor in `encoding` (1-D and block-incompatible widths as described above).
    static func encode(_ t: Tensor, name: String, as encoding: GGUFMergeEncoding) -> GGUFTensorPayload {
        var chosen = t.rank == 1 ? .f32 : encoding
        if (chosen == .q8_0 || chosen == .q4_0) && t.shape[1] % 32 != 0 { chosen = .f16 }
        switch chosen {
        case .f32:
            return GGUFTensorPayload(name: name, f32: t)
        case .f16:
            var bytes = [UInt8]()
            bytes.reserveCapacity(t.count * 2)
            t.withUnsafeBufferPointer { values in
                for v in values { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
            }
            return GGUFTensorPayload(name: name, shape: t.shape, type: .f16, bytes: bytes)
        case .q8_0:
            return GGUFTensorPayload(name: name, shape: t.shape, type: .q8_0, bytes: Q8_0Matrix(quantizing: t).blocks)
        case .q4_0:
            return GGUFTensorPayload(name: name, shape: t.shape, type: .q4_0, bytes: Q4_0Matrix(quantizing: t).blocks)
        }
    }
}
