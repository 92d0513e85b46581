@testable import LorikeetBench
import XCTest

/// `bench serve` reads both servers' streams with one reader: Lorikeet's compact events with a
/// usage chunk, and llama-cpp-python's (sse-starlette: spaced JSON, CRLF, pings, no usage), each
/// arriving in pieces of any size inside chunked framing.
final class StreamClientTests: XCTestCase {
    /// Feeds `text` `step` bytes at a time; returns the reader and the deltas each feed completed.
    func read(_ text: String, step: Int) -> (StreamClient.EventReader, Int) {
        var reader = StreamClient.EventReader()
        let bytes = Array(text.utf8)
        var completed = 0
        var i = 0
        while i < bytes.count {
            completed += reader.feed(bytes[i..<min(bytes.count, i + step)])
            i += step
        }
        return (reader, completed)
    }

    func testLorikeetStreamCountsDeltasAndKeepsTheUsage() {
        let events = [#"{"choices":[{"delta":{"role":"assistant"},"index":0}]}"#,
                      #"{"choices":[{"delta":{"content":"A"},"index":0}]}"#,
                      #"{"choices":[{"delta":{"content":" monad"},"index":0}]}"#,
                      #"{"choices":[{"delta":{"content":""},"finish_reason":"stop","index":0}]}"#,
                      #"{"choices":[],"usage":{"completion_tokens":3,"prompt_tokens":30,"total_tokens":33}}"#, "[DONE]"]
        var body = ""
        for e in events {
            let event = "data: \(e)\n\n"
            body += String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n"
        }
        let text = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body + "0\r\n\r\n"
        for step in [1, 7, 100_000] {
            let (reader, completed) = read(text, step: step)
            XCTAssertEqual(reader.status, 200)
            XCTAssertEqual(reader.pieces, 2, "step \(step)")
            XCTAssertEqual(completed, 2)
            XCTAssertEqual(reader.usageTokens, 3)
        }
    }

    func testLlamaCppPythonStreamCountsDeltasWithoutUsage() {
        let events = [#"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}"#,
                      #"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "data: x"}, "finish_reason": null}]}"#,
                      #"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "é"}, "finish_reason": null}]}"#,
                      #"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": " b"}, "finish_reason": null}]}"#,
                      #"{"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}"#, "[DONE]"]
        var body = ": ping - 2026-12-03 04:00:00\r\n\r\n"
        for e in events { body += "data: \(e)\r\n\r\n" }
        let text = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\r\n" + body
        for step in [1, 13, 100_000] {
            let (reader, completed) = read(text, step: step)
            XCTAssertEqual(reader.status, 200)
            XCTAssertEqual(reader.pieces, 3, "step \(step)")
            XCTAssertEqual(completed, 3)
            XCTAssertNil(reader.usageTokens)
        }
    }

    func testAnErrorStatusIsRead() {
        let (reader, completed) = read("HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\r\n{\"error\": {\"message\": \"no\"}}", step: 5)
        XCTAssertEqual(reader.status, 404)
        XCTAssertEqual(completed, 0)
    }
}
