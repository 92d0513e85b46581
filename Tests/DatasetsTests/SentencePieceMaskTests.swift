import Datasets
import Formats
import Foundation
import Tokenization
import XCTest

/// Loss masks over a SentencePiece tokenizer: its dummy-prefix ▁ is no byte of the rendered
/// conversation, so token offsets must come from decodedLengths, or every turn after a special
/// token would be off by one (Phi-3's vocabulary and chat template, from llama.cpp's fixtures).
final class SentencePieceMaskTests: XCTestCase {
    func testPhi3MaskCoversTheAnswerAndTheEndOfTurnOnly() throws {
        let path = CacheLocation.llamaCppFixtures + "/ggml-vocab-phi-3.gguf"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("llama.cpp fixtures missing: run scripts/setup.sh") }
        let file = try GGUFFile(path: path)
        let tokenizer = try makeTokenizer(gguf: file)
        let template = try ChatTemplate(source: try XCTUnwrap(file.metadata["tokenizer.chat_template"]?.string))
        let messages: [JinjaValue] = [
            .dictionary([("role", .string("user")), ("content", .string("What is RAM?"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("Memory."))]),
            .dictionary([("role", .string("user")), ("content", .string("And ROM?"))]),
            .dictionary([("role", .string("assistant")), ("content", .string("Read-only memory."))]),
        ]
        let example = try ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant).encode(.chat(messages: messages, tools: nil))
        // Trained tokens, turn by turn (a run of trained tokens is one turn).
        var turns: [[Int32]] = [], current: [Int32] = []
        for (id, trained) in zip(example.ids, example.trained) {
            if trained { current.append(id) } else if !current.isEmpty { turns.append(current); current = [] }
        }
        if !current.isEmpty { turns.append(current) }
        XCTAssertEqual(turns.map { String(decoding: $0.flatMap(tokenizer.tokenBytes), as: UTF8.self) }, ["Memory.<|end|>", "Read-only memory.<|end|>"])
    }
}
