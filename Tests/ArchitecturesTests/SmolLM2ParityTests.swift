import Foundation
import Formats
import Architectures
import TensorCore
import TestSupport
import XCTest

/// SmolLM2-135M-Instruct against transformers (goldens from
/// scripts/fixtures/smollm2/make_smollm2_goldens.py): sampled logits, log-sum-exp and argmax at
/// every position of 4 chat prompts (≤ 1e-3), and 48 greedily decoded tokens.
final class SmolLM2ParityTests: XCTestCase {
    struct Goldens: Decodable {
        struct Case: Decodable {
            let prompt: String
            let ids: [Int32]
            let sampled_logits: [[Float]]
            let logsumexp: [Float]
            let argmax: [Int32]
            let greedy: [Int32]
        }
        let columns: [Int]
        let cases: [Case]
    }

    static func goldens() throws -> Goldens {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/smollm2-goldens.json")
        return try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }

    /// Compares every position's logits of every prompt with the goldens.
    static func assertLogitsMatch(_ model: DecoderModel, file: StaticString = #filePath, line: UInt = #line) throws {
        let goldens = try goldens()
        for c in goldens.cases {
            let t = c.ids.count
            let logits = noGrad { model.logits(ids: IntTensor(shape: [1, t], scalars: c.ids), positions: .positions(batch: 1, length: t)) }
            let v = logits.shape[2]
            var worst: Float = 0
            for pos in 0..<t {
                let row = Array(logits.scalars[(pos * v)..<((pos + 1) * v)])
                let sampled = goldens.columns.map { row[$0] }
                worst = max(worst, zip(sampled, c.sampled_logits[pos]).map { abs($0 - $1) }.max() ?? 0)
                let m = row.max() ?? 0
                let lse = m + Float(Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }))
                worst = max(worst, abs(lse - c.logsumexp[pos]))
                XCTAssertEqual(Int32(row.firstIndex(of: m) ?? -1), c.argmax[pos], "argmax at \(pos) of '\(c.prompt)'", file: file, line: line)
            }
            XCTAssertLessThanOrEqual(worst, 1e-3, "max |Δlogit| for '\(c.prompt)'", file: file, line: line)
        }
    }

    /// The embedded GGUF itself (fetched by scripts/setup.sh): Q4_1/Q8_0 blocks decoded by
    /// Lorikeet, Q/K rows un-permuted, must give transformers' logits.
    func testEmbeddedGGUFMatchesTransformers() throws {
        try Self.assertLogitsMatch(try DecoderModel(ggufPath: try Self.embeddedModelPath()))
    }

    static func embeddedModelPath() throws -> String {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("embedded model missing at \(path): run scripts/setup.sh")
        }
        return path
    }

    /// The transformers-dequantized copy that ../shared/peers/setup.sh writes (developer check).
    func testSafetensorsCopyMatchesTransformers() throws {
        let folder = ProcessInfo.processInfo.environment["SMOLLM2_HF"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/lorikeet-peers/smollm2-hf").path
        guard FileManager.default.fileExists(atPath: folder + "/config.json") else {
            throw XCTSkip("no Hugging Face copy of SmolLM2 at \(folder) (run ../shared/peers/setup.sh)")
        }
        try Self.assertLogitsMatch(try DecoderModel(huggingFaceFolder: folder))
    }
}

/// The decode-time product over the embedded GGUF's own tensors: the fused block kernels
/// (through the Q/K row un-permutation where it applies) against decode-then-dot.
final class GGUFMatvecTests: XCTestCase {
    func testFusedMatvecEqualsDecodeThenDotOnEveryEncodingOfTheFile() throws {
        let file = try GGUFFile(path: try SmolLM2ParityTests.embeddedModelPath())
        let source = GGUFWeightSource(file: file, config: try ModelConfig(gguf: file))
        var seen: Set<String> = []
        for name in [WeightNames.embedding, WeightNames.layer(0, "self_attn.q_proj.weight"), WeightNames.layer(0, "self_attn.k_proj.weight"),
                     WeightNames.layer(0, "mlp.down_proj.weight"), WeightNames.layer(29, "mlp.up_proj.weight")] {
            let m = try source.matrix(name)
            seen.insert(m.encodingName)
            var rng = RandomGenerator(seed: 3)
            let x = Tensor(uniform: [m.columns], rng: &rng)
            let fused = TensorStorage(count: m.rows), twin = TensorStorage(count: m.rows)
            m.matvec(x.storage.base, into: fused.base)
            m.defaultDotRows(0..<m.rows, with: x.storage.base, into: twin.base)
            for r in 0..<m.rows {
                XCTAssertEqual(fused.base[r], twin.base[r], accuracy: 1e-5 * max(1, abs(twin.base[r])), "\(name) row \(r)")
                if abs(fused.base[r] - twin.base[r]) > 1e-5 * max(1, abs(twin.base[r])) { break }
            }
        }
        XCTAssertEqual(seen, ["q4_1", "q8_0"], "the file's encodings, each through its fused kernel")
    }

    /// The batched step's product: several vectors at once through the many-vector kernels
    /// (strided x and y, row ranges that start and end inside a rotary head of Q and K) against
    /// `dotRows` vector by vector.
    func testManyVectorProductEqualsOneVectorAtATime() throws {
        let file = try GGUFFile(path: try SmolLM2ParityTests.embeddedModelPath())
        let source = GGUFWeightSource(file: file, config: try ModelConfig(gguf: file))
        for name in [WeightNames.layer(0, "self_attn.q_proj.weight"), WeightNames.layer(0, "self_attn.k_proj.weight"),
                     WeightNames.layer(0, "mlp.down_proj.weight"), WeightNames.embedding] {
            let m = try source.matrix(name)
            for (vectors, range) in [(3, 0..<m.rows), (17, 5..<min(m.rows, 140)), (2, 70..<71)] {
                let (ldx, ldy) = (m.columns + 5, range.count + 3)
                var rng = RandomGenerator(seed: UInt64(vectors))
                let x = Tensor(uniform: [vectors * ldx], rng: &rng)
                let fused = TensorStorage(count: vectors * ldy), twin = TensorStorage(count: vectors * ldy)
                fused.base.update(repeating: .nan, count: vectors * ldy)
                m.dotRows(range, with: x.storage.base, vectors: vectors, stride: ldx, into: fused.base, stride: ldy)
                m.defaultDotRows(range, with: x.storage.base, vectors: vectors, stride: ldx, into: twin.base, stride: ldy)
                var failures = 0
                for v in 0..<vectors {
                    for r in 0..<range.count where failures < 3 {
                        let (a, b) = (fused.base[v * ldy + r], twin.base[v * ldy + r])
                        XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(name) rows \(range), vector \(v) row \(r)")
                        if !(abs(a - b) <= 1e-5 * max(1, abs(b))) { failures += 1 }
                    }
                    XCTAssertTrue(fused.base[v * ldy + range.count].isNaN, "\(name): wrote past vector \(v)'s rows")
                }
            }
        }
    }
}
