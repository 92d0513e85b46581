@testable import Export
import Formats
import Foundation
import XCTest

/// `merge --quant Q4_K_M|Q5_K_M|Q6_K|…` picks, for every tensor of SmolLM2, Qwen2.5-Coder-0.5B
/// and Gemma 3 270M, the type llama.cpp's quantizer picks for the same F16 merge (fixture written
/// by scripts/verify/merged_quant_llamacpp.py --types-json from llama.cpp's own output files).
final class GGUFMergeTypeMixTests: XCTestCase {
    struct Table: Decodable {
        let generator: String
        /// model → encoding → [name, ggml dims, type name] in file order.
        let models: [String: [String: [[Entry]]]]
    }

    enum Entry: Decodable {
        case text(String), dims([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .dims(try c.decode([Int].self)) }
        }
    }

    func testTypePerTensorIsLlamaCppsForEveryMixAndModel() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/quant/llamacpp-type-mix.json")
        let table = try JSONDecoder().decode(Table.self, from: Data(contentsOf: url))
        XCTAssertFalse(table.models.isEmpty)
        var checked = 0
        for (model, mixes) in table.models.sorted(by: { $0.key < $1.key }) {
            for (quant, rows) in mixes.sorted(by: { $0.key < $1.key }) {
                let encoding = try XCTUnwrap(GGUFMergeEncoding(name: quant), quant)
                var tensors: [(name: String, dimensions: [Int], type: GGMLType)] = [], expected: [String] = []
                for row in rows {
                    guard row.count == 3, case .text(let name) = row[0], case .dims(let dims) = row[1], case .text(let type) = row[2] else {
                        return XCTFail("\(model) \(quant): malformed row")
                    }
                    tensors.append((name, dims, dims.count == 1 ? .f32 : .f16))
                    expected.append(type)
                }
                let chosen = encoding.tensorTypes(tensors).map(\.name)
                for (i, tensor) in tensors.enumerated() where chosen[i] != expected[i] {
                    XCTFail("\(model) \(quant) \(tensor.name) \(tensor.dimensions): Lorikeet \(chosen[i]), llama.cpp \(expected[i])")
                }
                checked += tensors.count
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// llama.cpp's fallbacks for widths a 256-value block does not divide, and the layers that
    /// get more bits (its use_more_bits), on a directory written here.
    func testFallbacksAndMoreBitsLayers() {
        XCTAssertEqual(GGUFMergeEncoding.fallback(.q4_K, columns: 896), .q5_0)
        XCTAssertEqual(GGUFMergeEncoding.fallback(.q5_K, columns: 576), .q5_1)
        XCTAssertEqual(GGUFMergeEncoding.fallback(.q6_K, columns: 640), .q8_0)
        XCTAssertEqual(GGUFMergeEncoding.fallback(.q4_0, columns: 48), .f16)
        XCTAssertEqual(GGUFMergeEncoding.fallback(.q4_K, columns: 1536), .q4_K)
        // 24 layers: the first 3, the last 3, and every third from layer 5.
        XCTAssertEqual((0..<24).filter { GGUFMergeEncoding.useMoreBits($0, 24) }, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23])
        XCTAssertNil(GGUFMergeEncoding(name: "q3_x"))
        XCTAssertEqual(GGUFMergeEncoding(name: "Q4_K_M"), .q4_K_M)
        XCTAssertEqual(GGUFMergeEncoding(name: "SOURCE"), .source)
    }
}
