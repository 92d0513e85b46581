import Foundation
import Formats
import Tokenization
import XCTest

/// Lorikeet's built-in Gemma 3 turn template (for Gemma 3 GGUFs without one) rendered as
/// transformers' apply_chat_template renders the same source, and tokenized as transformers'
/// Gemma 3 tokenizer does (scripts/fixtures/tokenizers/make_gemma3_template_goldens.py).
final class Gemma3TemplateTests: XCTestCase {
    struct Goldens: Decodable {
        struct Message: Decodable { let role: String; let content: String }
        struct Case: Decodable { let messages: [Message]; let add_generation_prompt: Bool; let text: String; let ids: [Int32] }
        let source: String
        let cases: [Case]
    }

    func testBuiltInTemplateRendersAndTokenizesLikeTransformers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gemma3-template-goldens.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        XCTAssertEqual(ChatTemplate.gemma3InstructSource, goldens.source, "the fixture was made from the template Lorikeet ships")
        XCTAssertEqual(ChatTemplate.builtInSource(architecture: "gemma3"), goldens.source)
        XCTAssertNil(ChatTemplate.builtInSource(architecture: "llama"))
        let template = try ChatTemplate(source: goldens.source)
        let path = CacheLocation.gemma3Model
        let tokenizer: (any Tokenizer)? = FileManager.default.fileExists(atPath: path) ? try makeTokenizer(gguf: GGUFFile(path: path)) : nil
        let variables: [String: JinjaValue] = tokenizer?.templateVariables ?? ["bos_token": .string("<bos>")]
        for c in goldens.cases {
            let messages = c.messages.map { JinjaValue.dictionary([("role", .string($0.role)), ("content", .string($0.content))]) }
            let text = try template.render(messages: messages, addGenerationPrompt: c.add_generation_prompt, variables: variables)
            XCTAssertEqual(text, c.text)
            if let tokenizer { XCTAssertEqual(try tokenizer.encode(text, addBOS: false), c.ids, c.text) }
        }
        XCTAssertThrowsError(try template.render(messages: [.dictionary([("role", .string("assistant")), ("content", .string("x"))])],
                                                 addGenerationPrompt: false, variables: variables), "roles must alternate")
    }
}
