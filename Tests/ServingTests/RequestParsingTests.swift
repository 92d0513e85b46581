import Lorikeet
@testable import Serving
import XCTest

/// The request parser, the key check and the adapter argument, without a model.
final class RequestParsingTests: XCTestCase {
    func parse(_ json: String, chat: Bool = true) throws(APIError) -> CompletionRequest {
        try CompletionRequest(body: Array(json.utf8), chat: chat)
    }

    func testAChatRequestReadsEveryField() throws {
        let r = try parse(#"{"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1, "seed": 7, "stop": "END", "max_tokens": 12, "stream": true, "stream_options": {"include_usage": true}, "n": 1, "frequency_penalty": 0}"#)
        XCTAssertEqual(r.model, "m")
        XCTAssertEqual(r.prompt, .chat([.system("s"), .user("ab")]))
        XCTAssertEqual(r.sampling, SamplingOptions(temperature: 0.5, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1, seed: 7))
        XCTAssertEqual(r.stop, ["END"])
        XCTAssertEqual(r.maxTokens, 12)
        XCTAssertTrue(r.stream)
        XCTAssertTrue(r.streamUsage)
    }

    func testDefaultsAreOpenAIs() throws {
        let r = try parse(#"{"model": "m", "prompt": "x"}"#, chat: false)
        XCTAssertEqual(r.prompt, .text("x"))
        XCTAssertEqual(r.sampling, SamplingOptions(temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0))
        XCTAssertNil(r.maxTokens)
        XCTAssertFalse(r.stream)
    }

    func testFieldsOfTheOtherEndpointAreUnknown() {
        XCTAssertThrowsError(try parse(#"{"model": "m", "prompt": "x"}"#, chat: true))
        XCTAssertThrowsError(try parse(#"{"model": "m", "messages": [{"role": "user", "content": "x"}]}"#, chat: false))
    }

    func testBooleansAreNotNumbersAndNumbersAreNotBooleans() {
        for body in [#"{"model": "m", "prompt": "x", "temperature": true}"#, #"{"model": "m", "prompt": "x", "stream": 1}"#,
                     #"{"model": "m", "prompt": "x", "max_tokens": false}"#] {
            XCTAssertThrowsError(try parse(body, chat: false), body) { error in
                XCTAssertEqual((error as? APIError)?.code, "invalid_type", body)
            }
        }
    }

    func testNestingDepthIgnoresBracketsInStrings() {
        XCTAssertEqual(CompletionRequest.nestingDepth(Array(#"{"a": [[1], {"b": "[[[[\"]]"}]}"#.utf8)), 3)
        XCTAssertEqual(CompletionRequest.nestingDepth(Array(repeating: UInt8(ascii: "["), count: 1000)), 1000)
    }

    func testConstantTimeEqualsComparesWholeKeys() {
        XCTAssertTrue(constantTimeEquals("sk-abc", "sk-abc"))
        XCTAssertFalse(constantTimeEquals("sk-ab", "sk-abc"))
        XCTAssertFalse(constantTimeEquals("sk-abcd", "sk-abc"))
        XCTAssertFalse(constantTimeEquals("sk-abd", "sk-abc"))
        XCTAssertFalse(constantTimeEquals("", "sk-abc"))
        // Same length, differing only in the low bit of the length-mismatch byte: still unequal.
        XCTAssertFalse(constantTimeEquals(String(repeating: "a", count: 257), String(repeating: "a", count: 1)))
    }

    func testAdapterArguments() {
        XCTAssertTrue(ServeOptions.parseAdapter("foldoc=runs/a.h5") == ("foldoc", "runs/a.h5"))
        XCTAssertTrue(ServeOptions.parseAdapter("runs/best.h5") == ("best", "runs/best.h5"))
        XCTAssertTrue(ServeOptions.parseAdapter("x=y=z") == ("x", "y=z"))
    }
}
