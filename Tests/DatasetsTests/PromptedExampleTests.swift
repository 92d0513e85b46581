import Datasets
import Foundation
import Tokenization
import XCTest

/// What `eval --generate` asks and expects of each record.
final class PromptedExampleTests: XCTestCase {
    func message(_ role: String, _ content: String) -> JinjaValue {
        .dictionary([("role", .string(role)), ("content", .string(content))])
    }

    func testThePromptIsEverythingBeforeTheLastAssistantTurn() throws {
        let path = try DatasetsTests.temporaryFile("""
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What is RAM?"}, {"role": "assistant", "content": "Memory."}]}

        {"messages": [{"role": "user", "content": "What is ROM?"}, {"role": "assistant", "content": "Read-only memory."}]}
        """)
        let examples = try PromptedExample.examples(from: try JSONLFile(path: path))
        XCTAssertEqual(examples.count, 2)
        XCTAssertEqual(examples[0].messages, [message("system", "Be brief."), message("user", "Hi"), message("assistant", "Hello."), message("user", "What is RAM?")])
        XCTAssertEqual(examples[0].userText, "What is RAM?")
        XCTAssertEqual(examples[0].reference, "Memory.")
        XCTAssertEqual(examples[0].line, 1)
        XCTAssertEqual(examples[1].messages, [message("user", "What is ROM?")])
        XCTAssertEqual(examples[1].reference, "Read-only memory.")
        XCTAssertEqual(examples[1].line, 3, "the blank line counts")
        XCTAssertEqual(try PromptedExample.examples(from: try JSONLFile(path: path), limit: 1).count, 1)
    }

    func testCompletionAndAlpacaRecordsGiveTheirAnswerAsReference() throws {
        let completion = try PromptedExample.examples(from: try JSONLFile(path: try DatasetsTests.temporaryFile(#"{"prompt": "What is a CPU?", "completion": "A processor."}"#)))
        XCTAssertEqual(completion.map(\.messages), [[message("user", "What is a CPU?")]])
        XCTAssertEqual(completion.map(\.reference), ["A processor."])
        let alpaca = try PromptedExample.examples(from: try JSONLFile(path: try DatasetsTests.temporaryFile(#"{"instruction": "Translate", "input": "chat", "output": "cat"}"#)))
        XCTAssertEqual(alpaca.map(\.userText), ["Translate\n\nchat"])
        XCTAssertEqual(alpaca.map(\.reference), ["cat"])
    }

    func testRecordsWithoutAReferenceAreRefusedByFileAndLine() throws {
        let text = try DatasetsTests.temporaryFile(#"{"text": "Once upon a time"}"#)
        XCTAssertThrowsError(try PromptedExample.examples(from: try JSONLFile(path: text))) {
            XCTAssertTrue("\($0)".hasPrefix(text + ": format 'text' has no reference answer"), "\($0)")
        }
        let noAnswer = try DatasetsTests.temporaryFile("""
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
        {"messages": [{"role": "user", "content": "Only a question"}]}
        """)
        XCTAssertThrowsError(try PromptedExample.examples(from: try JSONLFile(path: noAnswer))) {
            XCTAssertEqual("\($0)", noAnswer + ":2: no assistant turn to use as the reference answer")
        }
        XCTAssertEqual(try PromptedExample.examples(from: try JSONLFile(path: noAnswer), limit: 1).count, 1, "records past the limit are not looked at")
    }
}
