import Datasets
import Formats
import Foundation
import Tokenization
import XCTest

/// A JSONL conversation with `tools`, assistant tool calls and `tool` results, read, rendered
/// through Qwen2.5-Coder's own template and masked: the ids are transformers' tokenizer's on
/// transformers' rendering, and the trained tokens are exactly the assistant turns (tool calls
/// included, tool results not), found in the reference by the turn markers
/// (scripts/fixtures/tokenizers/make_qwen_tools_goldens.py).
final class ToolCallMaskTests: XCTestCase {
    static func goldens() throws -> [String: JinjaValue] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../TokenizationTests/Fixtures/qwen-tools-goldens.json")
        guard case .object(_, let root) = try JSONReader.parse(String(decoding: Data(contentsOf: url), as: UTF8.self)) else {
            throw XCTSkip("qwen-tools-goldens.json is not an object")
        }
        return root
    }

    /// Runs of trained tokens, decoded (one run per assistant turn).
    static func trainedRuns(_ example: TokenizedExample, _ tokenizer: any Tokenizer) -> [String] {
        var runs: [[Int32]] = [], current: [Int32] = []
        for (id, trained) in zip(example.ids, example.trained) {
            if trained { current.append(id) } else if !current.isEmpty { runs.append(current); current = [] }
        }
        if !current.isEmpty { runs.append(current) }
        return runs.map { String(decoding: $0.flatMap(tokenizer.tokenBytes), as: UTF8.self) }
    }

    func testToolCallTurnsAreTrainedAndToolResultsAreNot() throws {
        let root = try Self.goldens()
        guard case .string(let source)? = root["template"], case .array(let conversations)? = root["conversations"],
              case .array(let masks)? = root["masks"], let tools = root["tools"] else { return XCTFail("fixture layout") }
        let path = CacheLocation.qwenCoderModel
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("\(path) missing: run scripts/setup.sh") }
        let tokenizer = try makeTokenizer(gguf: GGUFFile(path: path))
        let template = try ChatTemplate(source: source)
        XCTAssertEqual(masks.count, 3)
        for case .object(_, let golden) in masks {
            guard case .int(let i)? = golden["conversation"], case .array(let ids)? = golden["ids"], case .array(let trained)? = golden["assistant"],
                  case .array(let texts)? = golden["assistant_text"], case .array(let parsed)? = golden["messages"] else { return XCTFail("mask case layout") }
            // The record as a user writes it (conversation 2 in OpenAI's shape: string arguments, null content).
            let record = JinjaValue.dictionary([("tools", tools), ("messages", conversations[i])]).json()
            let file = try JSONLFile(path: try DatasetsTests.temporaryFile(record + "\n"))
            XCTAssertEqual(file.format, .messages)
            guard case .chat(let messages, let recordTools)? = file.records.first?.conversation else { return XCTFail("not a chat") }
            XCTAssertEqual(messages, parsed, "conversation \(i): string arguments are read as the JSON object they hold")
            XCTAssertEqual(recordTools, tools)

            let example = try ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .assistant).encode(file.records[0].conversation)
            XCTAssertEqual(example.ids, ids.compactMap { if case .int(let n) = $0 { return Int32(n) }; return nil }, "conversation \(i)")
            XCTAssertEqual(example.trained, trained.map { $0 == .int(1) }, "conversation \(i)")
            let expected = texts.compactMap { if case .string(let s) = $0 { return s }; return nil }
            XCTAssertEqual(Self.trainedRuns(example, tokenizer), expected, "conversation \(i)")
            XCTAssertTrue(expected.first?.contains("<tool_call>") ?? false, "the first assistant turn is a tool call")

            let last = try ExampleEncoder(tokenizer: tokenizer, template: template, trainOn: .last).encode(file.records[0].conversation)
            XCTAssertEqual(Self.trainedRuns(last, tokenizer), [expected[expected.count - 1]], "conversation \(i), train_on: last")
        }
    }

    func testBadToolCallsNameTheMessage() throws {
        let bad: [(String, String)] = [
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}"#,
             ":1: message 1: tool call 0's arguments are a string but not JSON"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]}"#,
             ":1: message 1: tool call 0's arguments must be a JSON object"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": {"name": "f"}}]}"#,
             ":1: message 1: 'tool_calls' must be an array"),
        ]
        for (line, expected) in bad {
            let path = try DatasetsTests.temporaryFile(line + "\n")
            XCTAssertThrowsError(try JSONLFile(path: path)) { XCTAssertTrue("\($0)".contains(expected), "\($0) lacks \(expected)") }
        }
    }
}
