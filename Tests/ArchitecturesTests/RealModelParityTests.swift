import Foundation
import Formats
import Architectures
import TensorCore
import XCTest

/// The real test bases against transformers loading the same GGUF dequantized to float32
/// (goldens from scripts/fixtures/models/make_real_model_goldens.py): at every position of
/// every prompt the log-sum-exp over the whole vocabulary and the argmax, and 256 sampled
/// logits at the kept positions, within 1e-3. Gemma 3's last prompt is longer than its
/// 512-token window, so the windowed layers and their RoPE base are part of the comparison.
final class RealModelParityTests: XCTestCase {
    struct Goldens: Decodable {
        struct Case: Decodable {
            let prompt: String
            let ids: [Int32]
            let positions: [Int]
            let sampled_logits: [[Float]]
            let logsumexp: [Float]
            let argmax: [Int32]
            let greedy: [Int32]
        }
        let model: String
        let columns: [Int]
        let cases: [Case]
    }

    static func goldens(_ name: String) throws -> Goldens {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        return try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
    }

    /// The cached model file, or a skip naming what to run.
    static func modelPath(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("real test base missing at \(path): run scripts/setup.sh")
        }
        return path
    }

    /// Logits rows [n, V] of positions `range`, through the head in chunks (a 600-token prompt
    /// over a 262k vocabulary would be 630 MB at once).
    static func logitRows(_ model: DecoderModel, hidden: Tensor, _ range: Range<Int>) -> [Float] {
        noGrad {
            var rows = model.head.forward(hidden.slice(axis: 1, range)).scalars  // [1, n, V]
            if let cap = model.config.finalLogitSoftcap { rows = rows.map { cap * Foundation.tanh($0 / cap) } }
            return rows
        }
    }

    static func assertLogitsMatch(_ model: DecoderModel, _ goldens: Goldens, file: StaticString = #filePath, line: UInt = #line) {
        let v = model.config.vocabSize
        for c in goldens.cases {
            let t = c.ids.count
            let hidden = noGrad { model.hiddenStates(ids: IntTensor(shape: [1, t], scalars: c.ids), positions: .positions(batch: 1, length: t)) }
            var worst: Float = 0, worstAt = 0, kept = 0
            var mismatches: [Int] = []
            for start in stride(from: 0, to: t, by: 64) {
                let chunk = logitRows(model, hidden: hidden, start..<min(t, start + 64))
                for pos in start..<min(t, start + 64) {
                    let row = chunk[((pos - start) * v)..<((pos - start + 1) * v)]
                    let m = row.max() ?? 0
                    let lse = m + Float(Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1 - m)) }))
                    var error = abs(lse - c.logsumexp[pos])
                    if kept < c.positions.count, c.positions[kept] == pos {
                        let sampled = goldens.columns.map { row[row.startIndex + $0] }
                        error = max(error, zip(sampled, c.sampled_logits[kept]).map { abs($0 - $1) }.max() ?? 0)
                        kept += 1
                    }
                    if error > worst { (worst, worstAt) = (error, pos) }
                    if Int32((row.firstIndex(of: m) ?? -1) - row.startIndex) != c.argmax[pos] { mismatches.append(pos) }
                }
            }
            print("\(goldens.model) '\(c.prompt.prefix(24).debugDescription)…' (\(t) tokens): max |Δ| \(worst) at \(worstAt), argmax mismatches \(mismatches.count)")
            XCTAssertEqual(kept, c.positions.count, "every kept position compared", file: file, line: line)
            XCTAssertEqual(mismatches, [], "argmax differs at these positions of '\(c.prompt.prefix(40))'", file: file, line: line)
            XCTAssertLessThanOrEqual(worst, 1e-3, "max |Δlogit| (at position \(worstAt) of \(t)) for '\(c.prompt.prefix(40))'", file: file, line: line)
        }
    }

    func testGemma3GGUFMatchesTransformers() throws {
        let goldens = try Self.goldens("gemma3-270m-goldens.json")
        let model = try DecoderModel(ggufPath: try Self.modelPath(CacheLocation.gemma3Model))
        XCTAssertEqual(model.config.family, .gemma3)
        XCTAssertGreaterThan(goldens.cases.last?.ids.count ?? 0, model.config.slidingWindow ?? .max, "the long prompt outgrows the window")
        Self.assertLogitsMatch(model, goldens)
    }

    func testQwenCoderGGUFMatchesTransformers() throws {
        let goldens = try Self.goldens("qwen2.5-coder-0.5b-goldens.json")
        Self.assertLogitsMatch(try DecoderModel(ggufPath: try Self.modelPath(CacheLocation.qwenCoderModel)), goldens)
    }
}
