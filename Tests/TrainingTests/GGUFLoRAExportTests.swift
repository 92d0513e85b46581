import Formats
import Foundation
import LoRA
@testable import Architectures
import Quantization
import TensorCore
@testable import Training
@testable import Export
import XCTest

/// A LoRA GGUF for SmolLM2's own GGUF: llama.cpp's adapter keys and tensor names, A and B
/// as written, and Q/K's lora_b in the base file's RoPE row order — read back through the very
/// row mapping that makes Lorikeet's SmolLM2 logits equal transformers', it gives our B.
final class GGUFLoRAExportTests: XCTestCase {
    func testLoRAGGUFForSmolLM2() throws {
        let path = CacheLocation.embeddedModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let base = try GGUFFile(path: path)
        var document = RecipeDocument()
        for s in ["lora.rank=4", "lora.alpha=8", "lora.rslora=true", "lora.layers=[0]"] { try document.override(s) }
        try document.override("lora.targets=[q_proj, k_proj, down_proj]")
        let recipe = try Recipe(document)
        var archive = Checkpoint(recipe: recipe, base: BaseIdentity(name: "SmolLM2", path: "", sha256: "", license: "apache-2.0"),
                                 adapter: [:], state: nil, metrics: TrainingMetrics())
        var rng = RandomGenerator(seed: 3)
        var ours: [String: Tensor] = [:]
        for (module, out, input) in [("self_attn.q_proj", 576, 576), ("self_attn.k_proj", 192, 576), ("mlp.down_proj", 576, 1536)] {
            let name = "model.layers.0." + module
            for (which, shape) in [("A", [4, input]), ("B", [out, 4])] {
                let t = Tensor(uniform: shape, rng: &rng)
                ours[LoRAAdapter.pefName(name, which)] = t
                archive.adapter[LoRAAdapter.pefName(name, which)] = StoredTensor(t)
            }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-lora-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try GGUFLoRAExport(checkpoint: archive, source: "test", base: base).write(to: file)

        let lora = try GGUFFile(path: file)
        XCTAssertEqual(lora.metadata["general.type"]?.string, "adapter")
        XCTAssertEqual(lora.metadata["adapter.type"]?.string, "lora")
        XCTAssertEqual(lora.metadata["general.architecture"]?.string, "llama")
        XCTAssertEqual(lora.metadata["general.license"]?.string, "apache-2.0")
        // rsLoRA's alpha/√r expressed as llama.cpp's alpha/r.
        XCTAssertEqual(try XCTUnwrap(lora.metadata["adapter.lora.alpha"]?.double), 8 * 2, accuracy: 1e-6)
        XCTAssertEqual(lora.tensors.map(\.name).sorted(), ["blk.0.attn_k.weight.lora_a", "blk.0.attn_k.weight.lora_b", "blk.0.attn_q.weight.lora_a",
                                                          "blk.0.attn_q.weight.lora_b", "blk.0.ffn_down.weight.lora_a", "blk.0.ffn_down.weight.lora_b"])
        let config = try ModelConfig(gguf: base)
        for (module, stem, heads) in [("self_attn.q_proj", "attn_q", config.headCount), ("self_attn.k_proj", "attn_k", config.kvHeadCount), ("mlp.down_proj", "ffn_down", 0)] {
            let name = "model.layers.0." + module
            let a = try XCTUnwrap(lora.tensor("blk.0.\(stem).weight.lora_a")), b = try XCTUnwrap(lora.tensor("blk.0.\(stem).weight.lora_b"))
            let (ourA, ourB) = (try XCTUnwrap(ours[LoRAAdapter.pefName(name, "A")]), try XCTUnwrap(ours[LoRAAdapter.pefName(name, "B")]))
            XCTAssertEqual(a.dimensions, [ourA.shape[1], 4], "ggml order: the input width varies fastest")
            XCTAssertEqual(b.dimensions, [4, ourB.shape[0]])
            XCTAssertEqual(GGUFMatrix(file: lora, info: a).decoded().scalars, ourA.scalars)
            let stored = GGUFMatrix(file: lora, info: b)
            let readBack = heads > 0 ? RotaryRowOrder(stored, heads: heads).decoded() : stored.decoded()
            XCTAssertEqual(readBack.scalars, ourB.scalars, stem)
            if heads > 0 { XCTAssertNotEqual(stored.decoded().scalars, ourB.scalars, "\(stem): rows must be permuted in the file") }
        }
    }
}
