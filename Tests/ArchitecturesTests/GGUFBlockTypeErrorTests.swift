import Foundation
import Formats
import Architectures
import XCTest

/// A model file with one tensor of a type Lorikeet cannot decode (IQ*, Q2_K, Q3_K), or a Q4_K
/// tensor whose blocks are cut short, fails to load with a message that names the file, the
/// tensor, its type and what to do; the same file with a decodable Q4_K tensor loads.
final class GGUFBlockTypeErrorTests: XCTestCase {
    /// A one-layer Llama with 256-wide rows (whole K-quant super-blocks): every tensor F32
    /// except `blk.0.attn_q.weight`, which is `type` with deterministic bytes (finite fp16
    /// scales), written last so that cutting the file's tail cuts its blocks.
    func writeModel(qType: GGMLType, dropLastBytes: Int = 0) throws -> String {
        let path = try Self.writeModel(qType: qType, dropLastBytes: dropLastBytes)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The model file at a new temporary path, left for the caller to remove.
    static func writeModel(qType: GGMLType, dropLastBytes: Int = 0) throws -> String {
        let hidden = 256, ffn = 256, vocab = 8
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")), ("llama.vocab_size", .uint32(UInt32(vocab))),
            ("llama.embedding_length", .uint32(UInt32(hidden))), ("llama.block_count", .uint32(1)),
            ("llama.feed_forward_length", .uint32(UInt32(ffn))), ("llama.attention.head_count", .uint32(4)),
            ("llama.attention.head_count_kv", .uint32(4)), ("llama.context_length", .uint32(64)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
        ]
        func f32(_ name: String, _ shape: [Int]) -> GGUFTensorPayload {  // shape [rows, columns]
            let count = shape.reduce(1, *)
            let values = (0..<count).map { Float(($0 * 7919) % 97) / 970 - 0.05 }
            return GGUFTensorPayload(name: name, shape: shape, type: .f32, bytes: values.withUnsafeBytes(Array.init))
        }
        var tensors = [
            f32("token_embd.weight", [vocab, hidden]), f32("output_norm.weight", [hidden]), f32("output.weight", [vocab, hidden]),
            f32("blk.0.attn_norm.weight", [hidden]), f32("blk.0.ffn_norm.weight", [hidden]),
            f32("blk.0.attn_k.weight", [hidden, hidden]), f32("blk.0.attn_v.weight", [hidden, hidden]),
            f32("blk.0.attn_output.weight", [hidden, hidden]),
            f32("blk.0.ffn_gate.weight", [ffn, hidden]), f32("blk.0.ffn_up.weight", [ffn, hidden]), f32("blk.0.ffn_down.weight", [hidden, ffn]),
        ]
        guard let (elements, blockBytes) = qType.blockGeometry else { throw CocoaError(.fileWriteUnknown) }
        let blocks = hidden * hidden / elements
        var bytes = (0..<(blocks * blockBytes)).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        for b in 0..<blocks where qType == .q4_K {  // d, dmin = 0.001 (fp16 0x1419)
            bytes[b * blockBytes] = 0x19; bytes[b * blockBytes + 1] = 0x14; bytes[b * blockBytes + 2] = 0x19; bytes[b * blockBytes + 3] = 0x14
        }
        tensors.append(GGUFTensorPayload(name: "blk.0.attn_q.weight", shape: [hidden, hidden], type: qType, bytes: bytes))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-\(qType.name)-\(UUID().uuidString).gguf").path
        try GGUFFile.write(metadata: metadata, encoded: tensors, to: path)
        if dropLastBytes > 0 {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            try data.dropLast(dropLastBytes).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    func assertLoadFails(_ path: String, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DecoderModel(ggufPath: path), file: file, line: line) { error in
            let message = "\(error)"
            for w in [path, "'blk.0.attn_q.weight'"] + words {
                XCTAssertTrue(message.contains(w), "'\(w)' in: \(message)", file: file, line: line)
            }
        }
    }

    func testAQ4KTensorLoadsAndDecodes() throws {
        let model = try DecoderModel(ggufPath: try writeModel(qType: .q4_K))
        XCTAssertEqual(model.config.hiddenSize, 256)
        // A prefill (panel decode) and a decoding step (fused matvec) over the Q4_K projection.
        let cache = model.makeCache(capacity: 4)
        let prefill = model.nextTokenLogits(ids: [1, 2, 3], cache: cache), step = model.nextTokenLogits(ids: [4], cache: cache)
        XCTAssertEqual(prefill.count, 8)
        XCTAssertTrue((prefill + step).allSatisfy(\.isFinite))
    }

    func testQ2KAndQ3KTensorsNameTheTensorTheTypeAndWhatToDo() throws {
        for type in [GGMLType.q2_K, .q3_K] {
            assertLoadFails(try writeModel(qType: type), mentioning: [type.name, "cannot decode", "Q4_K_M", "llama-quantize"])
        }
    }

    func testIQTensorsNameTheTensorTheTypeAndWhatToDo() throws {
        // IQ types have no block geometry Lorikeet knows: the GGUF reader stops at the directory.
        let path = try writeModelWithRawType(GGMLType.iq4_xs.rawValue)
        assertLoadFails(path, mentioning: ["IQ4_XS", "cannot read", "Q4_K_M", "llama-quantize"])
    }

    /// A Q4_K tensor whose last blocks are missing (a cut download) is refused when the file is
    /// opened, before anything decodes it: one missing byte, half a block, many blocks.
    func testTruncatedQ4KBlocksAreCaughtBeforeUse() throws {
        for cut in [1, 72, 144 * 5 + 3] {
            assertLoadFails(try writeModel(qType: .q4_K, dropLastBytes: cut), mentioning: ["outside the file", "truncated"])
        }
    }

    /// The Q4_K file with its Q4_K tensor's type number patched to `raw` in the directory (the
    /// writer refuses types without a known geometry, as a stranger's file would not).
    func writeModelWithRawType(_ raw: UInt32) throws -> String {
        let path = try writeModel(qType: .q4_K)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let name = Array("blk.0.attn_q.weight".utf8)
        let at = try XCTUnwrap(data.firstRange(of: Data(name)))
        // name, n_dims (u32), 2 × u64 dims, then the type (u32).
        let typeOffset = at.upperBound + 4 + 16
        withUnsafeBytes(of: raw.littleEndian) { data.replaceSubrange(typeOffset..<(typeOffset + 4), with: $0) }
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}
