import Architectures
import Quantization
import TensorCore
import XCTest

/// The scaling benchmark's synthetic shapes are the real models' shapes, and their random NF4
/// weights are deterministic and of a sensible scale.
final class SyntheticWeightSourceTests: XCTestCase {
    /// Every tensor a Llama decoder asks for, summed: the published parameter counts of Llama 3.2
    /// 1B (1,235,814,400) and Llama 2 7B (6,738,415,616), so a wrong dimension cannot hide.
    func testShapesHaveThePublishedParameterCounts() throws {
        for (shape, published) in [(SyntheticShape.llama1b, 1_235_814_400), (.llama7b, 6_738_415_616)] {
            let source = SyntheticWeightSource(shape: shape)
            let c = source.config
            var names = [WeightNames.embedding, WeightNames.finalNorm]
            if !c.tieWordEmbeddings { names.append(WeightNames.outputHead) }
            XCTAssertEqual(source.contains(WeightNames.outputHead), !c.tieWordEmbeddings, shape.rawValue)
            typealias S = WeightNames.Suffix
            for layer in 0..<c.layerCount {
                names += [S.attentionNorm, S.postAttentionNorm].map { WeightNames.layer(layer, $0) }
                names += [S.q, S.k, S.v, S.o, S.gate, S.up, S.down].map { WeightNames.layer(layer, $0 + ".weight") }
            }
            var total = 0
            for name in names {
                XCTAssertTrue(source.contains(name), name)
                if name.hasSuffix("norm.weight") { total += try source.vector(name).count } else {
                    // Shapes without making the weights: rows × columns from the source's own table.
                    guard let (rows, columns) = source.matrixShape(name) else { return XCTFail("\(shape.rawValue): no shape for \(name)") }
                    total += rows * columns
                }
            }
            XCTAssertEqual(total, published, shape.rawValue)
            XCTAssertFalse(source.contains(WeightNames.layer(c.layerCount, S.q + ".weight")), "a layer past the last one")
        }
    }

    func testWeightsAreDeterministicPerNameAndOfAReasonableScale() throws {
        let source = SyntheticWeightSource(shape: .llama1b)
        let name = WeightNames.layer(3, WeightNames.Suffix.k + ".weight")
        let first = try XCTUnwrap(try source.matrix(name) as? NF4Matrix)
        let again = try XCTUnwrap(try SyntheticWeightSource(shape: .llama1b).matrix(name) as? NF4Matrix)
        let other = try XCTUnwrap(try source.matrix(WeightNames.layer(3, WeightNames.Suffix.v + ".weight")) as? NF4Matrix)
        XCTAssertEqual([first.rows, first.columns], [512, 2048])
        XCTAssertEqual(first.packed, again.packed)
        XCTAssertEqual(first.scales, again.scales)
        XCTAssertNotEqual(first.packed, other.packed)

        let values = first.decoded().scalars
        let mean = values.reduce(0, +) / Float(values.count)
        let std = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)).squareRoot()
        XCTAssertLessThanOrEqual(values.map(abs).max() ?? .infinity, 0.0401)
        XCTAssertEqual(mean, 0, accuracy: 1e-3)
        XCTAssertEqual(std, 0.018, accuracy: 0.004, "weights near 1/√C keep activations in range")
    }

    func testUnknownNamesAreMissingTensors() {
        let source = SyntheticWeightSource(shape: .llama7b)
        XCTAssertThrowsError(try source.matrix("model.layers.0.mlp.gate_up_proj.weight")) { error in
            XCTAssertEqual(error as? ModelError, .missingTensor("model.layers.0.mlp.gate_up_proj.weight", source: "synthetic llama-7b-shape"))
        }
        XCTAssertThrowsError(try source.vector("model.layers.0.self_attn.q_norm.weight"))
    }
}
