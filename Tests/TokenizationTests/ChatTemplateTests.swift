import Foundation
import Formats
import Tokenization
import XCTest

/// Chat templates rendered byte for byte as transformers' apply_chat_template renders them
/// (scripts/fixtures/tokenizers/make_template_goldens.py), and the sandbox's limits.
final class ChatTemplateTests: XCTestCase {
    struct Goldens: Decodable {
        struct Case: Decodable { let template: String; let conversation: Int; let add_generation_prompt: Bool; let rendered: String?; let error: String? }
        let variables: [String: String]
        let templates: [String: String]
        let cases: [Case]
    }

    static func goldens() throws -> (Goldens, [[JinjaValue]]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/template-goldens.json")
        let data = try Data(contentsOf: url)
        let goldens = try JSONDecoder().decode(Goldens.self, from: data)
        // Conversations through the order-preserving reader, as the CLI reads them.
        let document = try JSONReader.parse(String(decoding: data, as: UTF8.self))
        guard case .object(_, let top) = document, case .array(let conversations)? = top["conversations"] else {
            throw XCTSkip("malformed goldens")
        }
        return (goldens, conversations.map { if case .array(let m) = $0 { return m }; return [] })
    }

    func testEveryTemplateMatchesTransformers() throws {
        let (goldens, conversations) = try Self.goldens()
        XCTAssertEqual(Set(goldens.templates.keys), ["smollm2", "llama-3.1", "mistral-nemo", "qwen2.5", "qwen3", "gemma-2", "phi-3.5", "deepseek-r1-distill-qwen"])
        let variables = goldens.variables.mapValues { JinjaValue.string($0) }
        var templates: [String: ChatTemplate] = [:]
        for (name, source) in goldens.templates { templates[name] = try ChatTemplate(source: source) }
        var matched = 0, rejected = 0
        for c in goldens.cases {
            let label = "\(c.template) conversation \(c.conversation) generation prompt \(c.add_generation_prompt)"
            let template = try XCTUnwrap(templates[c.template])
            do {
                let rendered = try template.render(messages: conversations[c.conversation], addGenerationPrompt: c.add_generation_prompt, variables: variables)
                if let want = c.rendered {
                    XCTAssertEqual(rendered, want, label)
                    if rendered == want { matched += 1 }
                } else {
                    XCTFail("\(label): rendered, but transformers raised \(c.error ?? "")")
                }
            } catch {
                if let want = c.error {
                    XCTAssertTrue(error.description.contains(want), "\(label): \(error) vs \(want)")
                    rejected += 1
                }
                else { XCTFail("\(label): \(error)") }
            }
        }
        XCTAssertEqual(matched, 184, "byte-identical renderings: 8 templates × 12 conversations × generation prompt on/off, less the rejections")
        XCTAssertEqual(rejected, 8, "conversations the template rejects (Gemma 2 has no system role)")
    }

    func testSyntaxErrorsNameLineAndColumn() {
        XCTAssertThrowsError(try ChatTemplate(source: "line one\n  {% if x %}never closed")) { error in
            XCTAssertEqual((error as? TemplateError)?.line, 2)
            XCTAssertEqual((error as? TemplateError)?.column, 3)
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{{ a + }}")) { XCTAssertTrue("\($0)".contains("line 1")) }
        XCTAssertThrowsError(try ChatTemplate(source: "{% include 'x.html' %}")) { XCTAssertTrue("\($0)".contains("unsupported statement 'include'")) }
        XCTAssertThrowsError(try ChatTemplate(source: "{{ 'unterminated }}")) { XCTAssertTrue("\($0)".contains("unterminated") || "\($0)".contains("unclosed")) }
    }

    func testRunawayTemplatesAreStoppedByTheCaps() throws {
        let loops = try ChatTemplate(source: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
        XCTAssertThrowsError(try loops.render(messages: [], addGenerationPrompt: false)) { XCTAssertTrue("\($0)".contains("limit"), "\($0)") }
        let recursion = try ChatTemplate(source: "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")
        XCTAssertThrowsError(try recursion.render(messages: [], addGenerationPrompt: false)) { XCTAssertTrue("\($0)".contains("depth"), "\($0)") }
        let huge = try ChatTemplate(source: "{% for i in range(90000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}")
        XCTAssertThrowsError(try huge.render(messages: [], addGenerationPrompt: false)) { XCTAssertTrue("\($0)".contains("output exceeds"), "\($0)") }
    }

    func testJSONReaderKeepsKeyOrderAndRejectsMalformedInput() throws {
        let value = try JSONReader.parse(#"{"z": 1, "a": [true, null, "é\n"], "m": {"k": 2.5}}"#)
        guard case .object(let keys, _) = value else { return XCTFail() }
        XCTAssertEqual(keys, ["z", "a", "m"])
        XCTAssertThrowsError(try JSONReader.parse("{\"a\": 1,\n  \"b\" 2}")) { XCTAssertEqual(($0 as? TemplateError)?.line, 2) }
    }

    func testJSONReaderStringsMatchFoundation() throws {
        // Foundation's parser is the reference for every escape form and for raw non-ASCII.
        let literals = [#""plain""#, #""""#, #""a\"b\\c\/d""#, #""\n\t\r\b\f""#, #""caf\u00e9 \u00E9""#, #""\ud83d\ude00 x""#,
                        #""é ü 😀 中文""#, #""tab\tthen é\n""#, #""\\u0041""#, #""end\\""#]
        for literal in literals {
            let reference = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed) as? String)
            XCTAssertEqual(try JSONReader.parse(literal), .string(reference), literal)
        }
        XCTAssertEqual(try JSONReader.parse(#""\ud800x""#), .string("\u{FFFD}x"), "a lone surrogate")
        XCTAssertEqual(try JSONReader.parse(#""\é""#), .string("é"), "an escaped non-ASCII character stands for itself")
        // Columns count characters (scalars), not bytes.
        XCTAssertThrowsError(try JSONReader.parse(#"{"é": tru}"#)) { XCTAssertEqual(($0 as? TemplateError)?.column, 7) }
        for bad in [#""abc"#, #""ab\"#, #""\u12""#, #""\uZZZZ""#] {
            XCTAssertThrowsError(try JSONReader.parse(bad), bad)
        }
    }
}

/// Template and tokenizer together: SmolLM2's own template from its GGUF, rendered and
/// tokenized by Lorikeet, gives exactly the prompt ids transformers' apply_chat_template gave
/// for the model goldens (Tests/ArchitecturesTests/Fixtures/smollm2-goldens.json).
final class PromptIdsTests: XCTestCase {
    struct Goldens: Decodable { struct Case: Decodable { let prompt: String; let ids: [Int32] }; let cases: [Case] }

    func testChatPromptsTokenizeLikeTransformers() throws {
        let tokenizer = try SmolLM2TokenizerTests.tokenizer()
        let file = try GGUFFile(path: CacheLocation.embeddedModel)
        let template = try ChatTemplate(source: try XCTUnwrap(file.metadata["tokenizer.chat_template"]?.string))
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ArchitecturesTests/Fixtures/smollm2-goldens.json")
        let goldens = try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        XCTAssertEqual(goldens.cases.count, 4)
        for c in goldens.cases {
            let text = try template.render(messages: [.dictionary([("role", .string("user")), ("content", .string(c.prompt))])],
                                           addGenerationPrompt: true)
            XCTAssertEqual(try tokenizer.encode(text, addBOS: false), c.ids, c.prompt)
        }
    }
}
