import Foundation
import Formats
import Models
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
