import Lorikeet
import Formats
import Foundation
import Architectures
import TensorCore
import Tokenization
import XCTest

/// Qwen2.5-Coder-0.5B-Instruct from its Q4_K_M GGUF and as the Hugging Face folder
/// transformers writes from that GGUF (`/work/shared/peers/hf_from_gguf.py`: the GGUF's
/// blocks dequantized to fp32, tokenizer.json and the chat template saved by AutoTokenizer),
/// both through `BaseModel`: the same prompt ids from either tokenizer and chat template, the
/// same logits (same weights, so within 1e-4) and the same greedy tokens.
final class HuggingFaceFolderParityTests: XCTestCase {
    static let gguf = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    static let folder = "qwen2.5-coder-0.5b-hf"
    static let prompts = ["def fibonacci(n):", "What is a compiler?", "Write a haiku about garbage collection.", "SELECT name FROM users WHERE"]

    func load() throws -> (gguf: BaseModel, folder: BaseModel) {
        let gguf = CacheLocation.models + "/" + Self.gguf, folder = CacheLocation.models + "/" + Self.folder
        guard FileManager.default.fileExists(atPath: gguf) else { throw XCTSkip("\(Self.gguf) missing: run scripts/setup.sh") }
        guard FileManager.default.fileExists(atPath: folder + "/config.json") else {
            throw XCTSkip("\(folder) missing: write it with ~/.cache/lorikeet-peers/venv/bin/python /work/shared/peers/hf_from_gguf.py \(gguf) \(folder)")
        }
        return (try BaseModel(loading: gguf), try BaseModel(loading: folder))
    }

    /// The chat-templated prompt ids of `text` from `base`'s own tokenizer and template.
    func promptIDs(_ base: BaseModel, _ text: String) throws -> [Int32] {
        let rendered = try base.renderPrompt([JinjaValue(json: ["role": "user", "content": text])])
        return try base.tokenizer.encode(rendered, parseSpecial: true)
    }

    func greedy(_ model: DecoderModel, _ prompt: [Int32], tokens: Int) -> [Int32] {
        let cache = model.makeCache(capacity: prompt.count + tokens)
        var out: [Int32] = [], next = prompt
        for _ in 0..<tokens {
            let logits = model.nextTokenLogits(ids: next, cache: cache)
            let best = Int32(logits.indices.max { logits[$0] < logits[$1] } ?? 0)
            out.append(best)
            next = [best]
        }
        return out
    }

    func testFolderWrittenFromTheGGUFGivesTheSameIDsLogitsAndGreedyTokens() throws {
        let (gguf, folder) = try load()
        XCTAssertEqual(folder.config.family, .qwen2)
        XCTAssertNotNil(folder.chatTemplate, "the folder's chat template (chat_template.jinja or tokenizer_config.json) was not found")
        for text in Self.prompts {
            // Tokenizer: raw text and the chat-templated prompt give the same ids.
            XCTAssertEqual(try folder.tokenizer.encode(text), try gguf.tokenizer.encode(text), text)
            let ids = try promptIDs(gguf, text)
            XCTAssertEqual(try promptIDs(folder, text), ids, text)
            XCTAssertGreaterThan(ids.count, 10)

            let input = IntTensor(shape: [1, ids.count], scalars: ids)
            let positions = IntTensor(shape: [1, ids.count], scalars: (0..<Int32(ids.count)).map { $0 })
            let a = noGrad { gguf.model.logits(ids: input, positions: positions) }
            let b = noGrad { folder.model.logits(ids: input, positions: positions) }
            XCTAssertEqual(a.shape, b.shape)
            let difference = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(difference, 1e-4, "\(text): max logit difference \(difference)")

            let tokens = greedy(gguf.model, ids, tokens: 16)
            XCTAssertEqual(greedy(folder.model, ids, tokens: 16), tokens, text)
        }
    }
}
