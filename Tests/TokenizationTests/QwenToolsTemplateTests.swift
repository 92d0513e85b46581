import Foundation
import Tokenization
import XCTest

/// Qwen2.5-Coder's own chat template (copied from its GGUF into the fixture, so no model is
/// needed) with `tools`, assistant turns carrying `tool_calls` and `tool` results, rendered byte
/// for byte as transformers' apply_chat_template renders them
/// (scripts/fixtures/tokenizers/make_qwen_tools_goldens.py).
final class QwenToolsTemplateTests: XCTestCase {
    /// The fixture read with Lorikeet's order-keeping JSON reader: `tojson` prints tool
    /// definitions and arguments in document order, so Foundation's unordered dictionaries won't do.
    static func goldens() throws -> [String: JinjaValue] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/qwen-tools-goldens.json")
        guard case .object(_, let root) = try JSONReader.parse(String(decoding: Data(contentsOf: url), as: UTF8.self)) else {
            throw XCTSkip("qwen-tools-goldens.json is not an object")
        }
        return root
    }

    func testToolConversationsRenderLikeTransformers() throws {
        let root = try Self.goldens()
        guard case .string(let source)? = root["template"], case .array(let conversations)? = root["conversations"],
              case .array(let renderings)? = root["renderings"], let tools = root["tools"] else { return XCTFail("fixture layout") }
        let template = try ChatTemplate(source: source)
        XCTAssertEqual(renderings.count, 10)
        for case .object(_, let r) in renderings {
            guard case .int(let i)? = r["conversation"], case .bool(let generationPrompt)? = r["add_generation_prompt"],
                  case .string(let expected)? = r["rendered"], case .array(let messages) = conversations[i] else { return XCTFail("fixture case layout") }
            let withTools = r["no_tools"] != .bool(true)
            let text = try template.render(messages: messages, addGenerationPrompt: generationPrompt,
                                           variables: withTools ? ["tools": tools] : [:])
            XCTAssertEqual(text, expected, "conversation \(i), generation prompt \(generationPrompt), tools \(withTools)")
        }
    }
}
