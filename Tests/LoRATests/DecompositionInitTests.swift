import Foundation
import Formats
import LoRA
import Architectures
import Quantization
import TensorCore
import TestSupport
import XCTest

/// PiSSA against PEFT (scripts/fixtures/lora/make_pissa_goldens.py), and LoftQ by what it
/// promises: a quantized base plus its adapter closer to the original weights than the
/// quantized base alone.
final class DecompositionInitTests: XCTestCase {
    static let base = PEFTParityTests.base

    func testPiSSAMatchesPEFTUpToTheSignOfEachSingularPair() throws {
        let peft = try PEFTParityTests.tensors(PEFTParityTests.fixtures + "/pissa.safetensors")
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 1)
        let adapter = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 4, alpha: 8, initialization: .pissa), rng: &rng, basePrecision: .f32)
        XCTAssertEqual(adapter.layers.count, 14)
        var residuals = 0
        for (module, layer) in adapter.layers {
            let a = try XCTUnwrap(peft[LoRAAdapter.pefName(module, "A")]), b = try XCTUnwrap(peft[LoRAAdapter.pefName(module, "B")])
            let (r, i) = (a.shape[0], a.shape[1])
            XCTAssertEqual(layer.a.shape, a.shape)
            for k in 0..<r {  // each row of A is PEFT's or its negation, and B's column k goes with it
                let ours = Array(layer.a.scalars[(k * i)..<((k + 1) * i)]), theirs = Array(a.scalars[(k * i)..<((k + 1) * i)])
                let sign: Float = zip(ours, theirs).map(*).reduce(0, +) < 0 ? -1 : 1
                for (x, y) in zip(ours, theirs) { XCTAssertEqual(x, sign * y, accuracy: 1e-4, "\(module) A row \(k)") }
                for o in 0..<b.shape[0] { XCTAssertEqual(layer.b.scalars[o * r + k], sign * b.scalars[o * r + k], accuracy: 1e-4, "\(module) B column \(k)") }
            }
            assertClose(layer.b.matmul(layer.a), b.matmul(a), tolerance: 1e-5, module)
            if let residual = peft["base_model.model." + module + ".residual"] {
                let frozen = try XCTUnwrap(layer.base as? QuantizedLinear)
                assertClose(frozen.weight.decoded(), residual, tolerance: 1e-5, module + " residual")
                residuals += 1
            }
        }
        XCTAssertEqual(residuals, 7, "the fixture carries layer 0's seven residuals")
    }

    func testPiSSAStartsAtTheBaseModel() throws {
        let ids = IntTensor(shape: [1, 6], scalars: [1, 17, 42, 5, 88, 3]), positions = IntTensor(shape: [1, 6], scalars: [0, 1, 2, 3, 4, 5])
        let plain = try DecoderModel(huggingFaceFolder: Self.base)
        let expected = noGrad { plain.logits(ids: ids, positions: positions) }
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 1)
        let adapter = try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 4, alpha: 8, initialization: .pissa), rng: &rng, basePrecision: .f32)
        adapter.setTraining(false)
        XCTAssertTrue(adapter.layers.values.allSatisfy { $0.b.scalars.contains { $0 != 0 } }, "PiSSA's B is not zero")
        assertClose(noGrad { model.logits(ids: ids, positions: positions) }, expected, tolerance: 1e-4, "logits")
    }

    /// Frobenius distance of `layer`'s effective weight (base + scale·B·A) from `original`.
    func distance(_ layer: LoRALinear, from original: Tensor) throws -> Float {
        let base = try XCTUnwrap(layer.base as? QuantizedLinear).weight.decoded()
        let effective = noGrad { base + layer.delta() }
        return zip(effective.scalars, original.scalars).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }

    func testLoftQBringsTheQuantizedBaseCloserToTheOriginal() throws {
        let source = try DecoderModel(huggingFaceFolder: Self.base)
        let originals = Dictionary(uniqueKeysWithValues: source.namedLinears.compactMap { name, layer in
            (layer as? QuantizedLinear).map { (name, $0.weight.decoded()) }
        })
        var errors: [Int: [String: Float]] = [:]
        for iterations in [1, 3] {
            let model = try DecoderModel(huggingFaceFolder: Self.base)
            var rng = RandomGenerator(seed: 1)
            let config = LoRAConfig(rank: 4, alpha: 8, initialization: .loftq, loftqIterations: iterations)
            let adapter = try LoRAAdapter(attachingTo: model, config: config, rng: &rng, basePrecision: .nf4)
            for (module, layer) in adapter.layers {
                let original = try XCTUnwrap(originals[module])
                XCTAssertTrue(layer.base is QuantizedLinear && (layer.base as? QuantizedLinear)?.weight is NF4Matrix, module)
                let plainError = try distance(LoRALinear(base: QuantizedLinear(weight: NF4Matrix(quantizing: original)), a: Tensor(zeros: [4, original.shape[1]]),
                                                         b: Tensor(zeros: [original.shape[0], 4]), scale: 2, rng: RandomGenerator(seed: 0)), from: original)
                let loftqError = try distance(layer, from: original)
                XCTAssertLessThan(loftqError, 0.9 * plainError, "\(module): LoftQ must remove a real part of the quantization error")
                errors[iterations, default: [:]][module] = loftqError
            }
        }
        let one = errors[1, default: [:]].values.reduce(0, +), three = errors[3, default: [:]].values.reduce(0, +)
        XCTAssertLessThanOrEqual(three, one * 1.001, "more alternations do not make it worse")
    }

    func testLoftQOverAnUnquantizedBaseIsRefusedByName() throws {
        let model = try DecoderModel(huggingFaceFolder: Self.base)
        var rng = RandomGenerator(seed: 1)
        XCTAssertThrowsError(try LoRAAdapter(attachingTo: model, config: LoRAConfig(rank: 4, initialization: .loftq), rng: &rng, basePrecision: .f32)) {
            XCTAssertTrue("\($0)".contains("loftq") && "\($0)".contains("nf4"), "\($0)")
        }
    }

    func assertClose(_ x: Tensor, _ y: Tensor, tolerance: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.shape, y.shape, what, file: file, line: line)
        let worst = zip(x.scalars, y.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tolerance, what, file: file, line: line)
    }
}
