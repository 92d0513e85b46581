import Foundation
import Formats
import Architectures
import Quantization
import TensorCore
import XCTest

/// `quantization.base: source`: the projections a GGUF stores in blocks stay those blocks
/// (same matrices, same logits), and the ones it stores as floats are encoded as NF4, as is a
/// corrected weight (PiSSA/LoftQ's residual is no longer the file's).
final class SourceBasePrecisionTests: XCTestCase {
    func encodings(_ model: DecoderModel) -> [String: String] {
        var out: [String: String] = [:]
        for (name, layer) in model.namedLinears where name != "lm_head" {
            if let frozen = layer as? QuantizedLinear { out[name] = frozen.weight.encodingName }
        }
        return out
    }

    func testSourceKeepsBlocksAndEncodesFloatsAsNF4() throws {
        let path = try GGUFBlockTypeErrorTests.writeModel(qType: .q4_K)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try DecoderModel(ggufPath: path)
        let before = encodings(model)
        XCTAssertEqual(before["model.layers.0.self_attn.q_proj"], "q4_k")
        XCTAssertEqual(before["model.layers.0.mlp.down_proj"], "f32")
        let cache = model.makeCache(capacity: 4)
        let asStored = model.nextTokenLogits(ids: [1, 2, 3], cache: cache)

        try model.quantizeBase(to: .source)
        let after = encodings(model)
        XCTAssertEqual(after.count, before.count)
        for (name, encoding) in after {
            XCTAssertEqual(encoding, before[name] == "f32" ? "nf4" : before[name] ?? "", name)
        }
        // Only the float projections changed: the logits move (NF4 error), so re-encode the
        // q4_k one as NF4 too and check that it is the one `source` left exact.
        let q = try XCTUnwrap(model.namedLinears.first { $0.name == "model.layers.0.self_attn.q_proj" }?.layer as? QuantizedLinear)
        XCTAssertTrue(q.weight.encodingName == "q4_k")
        let reloaded = try DecoderModel(ggufPath: path)
        try reloaded.quantizeBase(to: .nf4)
        XCTAssertEqual(encodings(reloaded)["model.layers.0.self_attn.q_proj"], "nf4")
        let sourceLogits = model.nextTokenLogits(ids: [1, 2, 3], cache: model.makeCache(capacity: 4))
        let nf4Logits = reloaded.nextTokenLogits(ids: [1, 2, 3], cache: reloaded.makeCache(capacity: 4))
        XCTAssertNotEqual(sourceLogits, nf4Logits, "nf4 re-encodes the Q4_K projection; source keeps it")
        XCTAssertEqual(asStored.count, sourceLogits.count)
    }

    func testSourceEncodesACorrectedWeightAsNF4() throws {
        let dense = Tensor(shape: [2, 64], scalars: (0..<128).map { Float($0 % 17) / 17 - 0.5 })
        let viaSource = try BasePrecision.source.encode(dense, name: "model.layers.0.mlp.up_proj")
        let viaNF4 = try BasePrecision.nf4.encode(dense, name: "model.layers.0.mlp.up_proj")
        XCTAssertEqual(viaSource.encodingName, "nf4")
        XCTAssertEqual(viaSource.decoded().scalars, viaNF4.decoded().scalars)
    }
}
