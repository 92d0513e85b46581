import Foundation
import Serving
import XCTest

/// The OpenAI endpoints over real HTTP on loopback, with the embedded SmolLM2 and two adapters:
/// at temperature 0 every answer, whole or streamed, is the text `lorikeet generate` prints.
final class OpenAIEndpointTests: XCTestCase {
    nonisolated(unsafe) static var fixture: ServerFixture?
    var fixture: ServerFixture { Self.fixture! }
    var client: HTTPTestClient { fixture.client }

    override func setUpWithError() throws {
        if Self.fixture == nil { Self.fixture = try ServerFixture() }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: ServerFixture.executable), "build with swift build --build-tests")
    }

    override class func tearDown() {
        fixture?.stop()
        fixture = nil
    }

    let question = "What is a monad?"
    let maxTokens = 12

    func chat(_ model: String, stream: Bool, extra: [String: Any] = [:]) throws -> HTTPTestClient.Reply {
        var body: [String: Any] = ["model": model, "messages": [["role": "user", "content": question]], "temperature": 0,
                                   "max_tokens": maxTokens, "stream": stream]
        body.merge(extra) { $1 }
        return try client.request("POST", "/v1/chat/completions", json: body)
    }

    /// The text of a streamed answer (deltas joined), checking the event stream's shape.
    func streamedText(_ reply: HTTPTestClient.Reply, chat: Bool) throws -> (text: String, finish: String?, usage: [String: Any]?) {
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(reply.headers["content-type"], "text/event-stream")
        let events = reply.events
        XCTAssertEqual(events.last, "[DONE]", "a stream ends with data: [DONE]")
        var text = "", finish: String?, usage: [String: Any]?
        for payload in events.dropLast() {
            let chunk = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
            XCTAssertEqual(chunk["object"] as? String, chat ? "chat.completion.chunk" : "text_completion")
            if let u = chunk["usage"] as? [String: Any] { usage = u }
            guard let choice = (chunk["choices"] as? [[String: Any]])?.first else { continue }
            if let f = choice["finish_reason"] as? String { finish = f }
            text += chat ? ((choice["delta"] as? [String: Any])?["content"] as? String ?? "") : (choice["text"] as? String ?? "")
        }
        return (text, finish, usage)
    }

    func testModelsListsTheBaseAndEveryAdapterAndHealthAnswers() throws {
        let models = try client.request("GET", "/v1/models")
        XCTAssertEqual(models.status, 200, models.text)
        XCTAssertEqual(models.json["object"] as? String, "list")
        let data = try XCTUnwrap(models.json["data"] as? [[String: Any]])
        XCTAssertEqual(data.map { $0["id"] as? String }, ["smollm2", "alpha", "beta"])
        XCTAssertEqual(data.map { $0["object"] as? String }, ["model", "model", "model"])
        XCTAssertEqual(data[1]["parent"] as? String, "smollm2")
        let health = try client.request("GET", "/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")
    }

    func testGreedyChatIsWhatGeneratePrintsForTheBaseAndEachAdapterWholeAndStreamed() throws {
        var texts: [String] = []
        for (model, adapter) in [("smollm2", nil), ("alpha", "alpha"), ("beta", "beta")] as [(String, String?)] {
            let expected = try fixture.generate(prompt: question, adapter: adapter, maxTokens: maxTokens)
            XCTAssertFalse(expected.isEmpty)
            let whole = try chat(model, stream: false)
            XCTAssertEqual(whole.status, 200, whole.text)
            XCTAssertEqual(whole.json["object"] as? String, "chat.completion")
            XCTAssertEqual(whole.json["model"] as? String, model)
            let choice = try XCTUnwrap((whole.json["choices"] as? [[String: Any]])?.first)
            let message = try XCTUnwrap(choice["message"] as? [String: Any])
            XCTAssertEqual(message["role"] as? String, "assistant")
            XCTAssertEqual(message["content"] as? String, expected, "\(model): the server's greedy reply is generate's")
            let usage = try XCTUnwrap(whole.json["usage"] as? [String: Any])
            let completionTokens = try XCTUnwrap(usage["completion_tokens"] as? Int)
            let promptTokens = try XCTUnwrap(usage["prompt_tokens"] as? Int)
            XCTAssertGreaterThan(promptTokens, 5)
            XCTAssertEqual(usage["total_tokens"] as? Int, promptTokens + completionTokens)
            XCTAssertEqual(choice["finish_reason"] as? String, completionTokens == maxTokens ? "length" : "stop")

            let streamed = try streamedText(try chat(model, stream: true, extra: ["stream_options": ["include_usage": true]]), chat: true)
            XCTAssertEqual(streamed.text, expected, "\(model): the streamed deltas join to generate's text")
            XCTAssertEqual(streamed.finish, choice["finish_reason"] as? String)
            XCTAssertEqual(streamed.usage?["completion_tokens"] as? Int, completionTokens)
            XCTAssertEqual(streamed.usage?["prompt_tokens"] as? Int, promptTokens)
            texts.append(expected)
        }
        XCTAssertEqual(Set(texts).count, 3, "each adapter changes the greedy reply, so the test tells the models apart: \(texts)")
    }

    func testTextCompletionIsWhatGenerateRawPrints() throws {
        let prompt = "The capital of France is"
        for (model, adapter) in [("smollm2", nil), ("beta", "beta")] as [(String, String?)] {
            let expected = try fixture.generate(prompt: prompt, adapter: adapter, maxTokens: 10, raw: true)
            let body: [String: Any] = ["model": model, "prompt": prompt, "temperature": 0, "max_tokens": 10]
            let whole = try client.request("POST", "/v1/completions", json: body)
            XCTAssertEqual(whole.status, 200, whole.text)
            XCTAssertEqual(whole.json["object"] as? String, "text_completion")
            let choice = try XCTUnwrap((whole.json["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(choice["text"] as? String, expected)
            var streamBody = body
            streamBody["stream"] = true
            let streamed = try streamedText(try client.request("POST", "/v1/completions", json: streamBody), chat: false)
            XCTAssertEqual(streamed.text, expected)
            XCTAssertEqual(streamed.finish, choice["finish_reason"] as? String)
        }
    }

    func testStopStringEndsTheReplyBeforeIt() throws {
        let full = try fixture.generate(prompt: question, adapter: nil, maxTokens: maxTokens)
        let words = full.split(separator: " ")
        guard words.count >= 3 else { throw XCTSkip("the reply is too short to cut: \(full)") }
        let stop = " " + words[2]
        let expected = try fixture.generate(prompt: question, adapter: nil, maxTokens: maxTokens, stop: [stop])
        XCTAssertLessThan(expected.count, full.count)
        let reply = try chat("smollm2", stream: false, extra: ["stop": stop])
        let choice = try XCTUnwrap((reply.json["choices"] as? [[String: Any]])?.first)
        XCTAssertEqual((choice["message"] as? [String: Any])?["content"] as? String, expected)
        XCTAssertEqual(choice["finish_reason"] as? String, "stop")
        let streamed = try streamedText(try chat("smollm2", stream: true, extra: ["stop": [stop]]), chat: true)
        XCTAssertEqual(streamed.text, expected)
        XCTAssertEqual(streamed.finish, "stop")
    }

    func testAdaptersAreAddedAndRemovedWhileServing() throws {
        let path = try ServerFixture.writeCheckpoint(fixture.directory + "/gamma.h5", target: "self_attn.o_proj", seed: 77)
        let added = try client.request("POST", "/v1/adapters", json: ["name": "gamma", "path": path])
        XCTAssertEqual(added.status, 201, added.text)
        XCTAssertEqual(added.json["id"] as? String, "gamma")
        let listed = try client.request("GET", "/v1/models").json["data"] as? [[String: Any]]
        XCTAssertEqual(listed?.compactMap { $0["id"] as? String }, ["smollm2", "alpha", "beta", "gamma"])
        let expected = try fixture.generate(prompt: question, adapter: path, maxTokens: maxTokens)
        let reply = try chat("gamma", stream: false)
        XCTAssertEqual(((reply.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String, expected)

        let again = try client.request("POST", "/v1/adapters", json: ["name": "gamma", "path": path])
        XCTAssertEqual(again.status, 409, again.text)
        let deleted = try client.request("DELETE", "/v1/adapters/gamma")
        XCTAssertEqual(deleted.status, 200, deleted.text)
        XCTAssertEqual(deleted.json["deleted"] as? Bool, true)
        let gone = try chat("gamma", stream: false)
        XCTAssertEqual(gone.status, 404, gone.text)
        XCTAssertEqual((gone.json["error"] as? [String: Any])?["code"] as? String, "model_not_found")
        let missing = try client.request("POST", "/v1/adapters", json: ["name": "delta", "path": fixture.directory + "/nothing.h5"])
        XCTAssertEqual(missing.status, 400, missing.text)
        XCTAssertEqual(try client.request("DELETE", "/v1/adapters/smollm2").status, 400, "the base cannot be removed")
    }
}
