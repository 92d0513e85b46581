import Foundation
import Serving
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Malformed and hostile requests: each gets a 4xx with OpenAI's error body (never a 500, never a
/// crash), and the server answers the next request as before.
final class HostileRequestTests: XCTestCase {
    nonisolated(unsafe) static var fixture: ServerFixture?
    var fixture: ServerFixture { Self.fixture! }
    static let key = "sk-test-0123456789"
    var auth: [String: String] { ["Authorization": "Bearer \(Self.key)"] }

    override func setUpWithError() throws {
        if Self.fixture == nil {
            Self.fixture = try ServerFixture(limits: EngineLimits(maxConcurrent: 2, maxQueued: 1, context: 256, maxTokensCap: 64),
                                             maxBodyBytes: 64 << 10, idleTimeout: 2, apiKey: Self.key)
        }
    }

    override class func tearDown() {
        fixture?.stop()
        fixture = nil
    }

    struct Case {
        var name: String
        var method = "POST"
        var path = "/v1/chat/completions"
        var body: [UInt8]? = nil
        var headers: [String: String]? = nil
        var status: Int
        var code: String? = nil
        /// Words the error message must contain (the numbers of a limit, the field at fault).
        var mentions: [String] = []
    }

    static func chat(_ extra: String) -> [UInt8] {
        Array(#"{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}]\#(extra)}"#.utf8)
    }

    var cases: [Case] {
        let longPrompt = String(repeating: "lorikeet ", count: 400)
        return [
            Case(name: "broken JSON", body: Array(#"{"model": "smollm2", "messages": [{"role""#.utf8), status: 400, code: "invalid_json"),
            Case(name: "JSON that is not an object", body: Array("[1, 2, 3]".utf8), status: 400, code: "invalid_json"),
            Case(name: "empty body", body: [], status: 400),
            Case(name: "invalid UTF-8", body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], status: 400, code: "invalid_json"),
            Case(name: "NaN literal", body: Self.chat(#", "temperature": NaN"#), status: 400, code: "invalid_json"),
            Case(name: "nesting 60000 deep", body: Array(repeating: UInt8(ascii: "["), count: 60_000), status: 400, code: "invalid_json"),
            Case(name: "unknown field", body: Self.chat(#", "temprature": 0"#), status: 400, code: "unknown_field", mentions: ["temprature"]),
            Case(name: "temperature a string", body: Self.chat(#", "temperature": "hot""#), status: 400, code: "invalid_type", mentions: ["temperature"]),
            Case(name: "max_tokens a fraction", body: Self.chat(#", "max_tokens": 1.5"#), status: 400, code: "invalid_type"),
            Case(name: "max_tokens a string", body: Self.chat(#", "max_tokens": "10""#), status: 400, code: "invalid_type"),
            Case(name: "stream not a boolean", body: Self.chat(#", "stream": "yes""#), status: 400, code: "invalid_type"),
            Case(name: "messages a string", body: Array(#"{"model": "smollm2", "messages": "hi"}"#.utf8), status: 400, mentions: ["messages"]),
            Case(name: "message without a role", body: Array(#"{"model": "smollm2", "messages": [{"content": "hi"}]}"#.utf8), status: 400),
            Case(name: "unknown role", body: Array(#"{"model": "smollm2", "messages": [{"role": "wizard", "content": "hi"}]}"#.utf8), status: 400),
            Case(name: "no model", body: Array(#"{"messages": [{"role": "user", "content": "hi"}]}"#.utf8), status: 400, mentions: ["model"]),
            Case(name: "huge max_tokens", body: Self.chat(#", "max_tokens": 1000000000"#), status: 400, code: "max_tokens_exceeded", mentions: ["1000000000", "64"]),
            Case(name: "negative max_tokens", body: Self.chat(#", "max_tokens": -5"#), status: 400),
            Case(name: "temperature out of range", body: Self.chat(#", "temperature": 7"#), status: 400),
            Case(name: "top_p zero", body: Self.chat(#", "top_p": 0"#), status: 400),
            Case(name: "several choices", body: Self.chat(#", "n": 3"#), status: 400),
            Case(name: "five stop strings", body: Self.chat(#", "stop": ["a", "b", "c", "d", "e"]"#), status: 400),
            Case(name: "prompt over the context",
                 body: Array(#"{"model": "smollm2", "messages": [{"role": "user", "content": "\#(longPrompt)"}], "max_tokens": 16}"#.utf8),
                 status: 400, code: "context_length_exceeded", mentions: ["256"]),
            Case(name: "completion over the context", path: "/v1/completions",
                 body: Array(#"{"model": "smollm2", "prompt": "\#(longPrompt)"}"#.utf8), status: 400, code: "context_length_exceeded", mentions: ["256"]),
            Case(name: "unknown model", body: Array(#"{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}"#.utf8),
                 status: 404, code: "model_not_found", mentions: ["gpt-4", "smollm2"]),
            Case(name: "unknown route", method: "GET", path: "/v1/engines", status: 404),
            Case(name: "wrong method", method: "PUT", path: "/v1/models", body: [], status: 404),
            Case(name: "no API key", body: Self.chat(""), headers: [:], status: 401, code: "invalid_api_key"),
            Case(name: "wrong API key", body: Self.chat(""), headers: ["Authorization": "Bearer sk-test-0123456780"], status: 401),
            Case(name: "API key as a prefix", body: Self.chat(""), headers: ["Authorization": "Bearer sk-test"], status: 401),
            Case(name: "body over the limit", body: Self.chat(#", "user": "\#(String(repeating: "x", count: 70_000))""#), status: 413),
            Case(name: "adapter with an unknown field", path: "/v1/adapters", body: Array(#"{"name": "x", "path": "/tmp/x", "force": true}"#.utf8), status: 400),
            Case(name: "adapter with a bad name", path: "/v1/adapters", body: Array(#"{"name": "../../etc", "path": "/tmp/x"}"#.utf8), status: 400),
            Case(name: "removing an unknown adapter", method: "DELETE", path: "/v1/adapters/nobody", status: 404),
        ]
    }

    func assertStillServing(_ after: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let health = try fixture.client.request("GET", "/health")
        XCTAssertEqual(health.status, 200, "after \(after)", file: file, line: line)
    }

    func assertOpenAIError(_ reply: HTTPTestClient.Reply, _ c: Case, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.status, c.status, "\(c.name): \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertEqual(reply.headers["content-type"], "application/json", c.name, file: file, line: line)
        let error = reply.json["error"] as? [String: Any]
        let message = error?["message"] as? String ?? ""
        XCTAssertFalse(message.isEmpty, "\(c.name): an OpenAI error body with a message: \(reply.text.prefix(300))", file: file, line: line)
        XCTAssertNotNil(error?["type"] as? String, c.name, file: file, line: line)
        if let code = c.code { XCTAssertEqual(error?["code"] as? String, code, "\(c.name): \(message)", file: file, line: line) }
        for word in c.mentions { XCTAssertTrue(message.contains(word), "\(c.name): '\(message)' names \(word)", file: file, line: line) }
    }

    func testEveryMalformedRequestGetsAFourHundredErrorBodyAndTheServerGoesOn() throws {
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for c in cases {
            let reply = try fixture.client.request(c.method, c.path, raw: c.body, headers: c.headers ?? auth)
            assertOpenAIError(reply, c)
            try assertStillServing(c.name)
        }
        // And a good request still works.
        let good = try fixture.client.request("POST", "/v1/chat/completions", raw: Self.chat(#", "max_tokens": 3, "temperature": 0"#), headers: auth)
        XCTAssertEqual(good.status, 200, good.text)
    }

    /// One exchange on a connection of its own, below the client's request helper: `head` as
    /// given, then `piece` up to `times` times while the server keeps reading, then the reply.
    func exchange(_ head: String, then piece: [UInt8] = [], times: Int = 0) throws -> HTTPTestClient.Reply {
        let client = fixture.client
        let fd = try client.connect(timeout: 30)
        defer { close(fd) }
        client.send(fd, Array(head.utf8))
        for _ in 0..<times where client.send(fd, piece) {}
        return try client.receive(fd)
    }

    /// 100 MB announced by Content-Length: refused from the header, before the body is read.
    func testAHundredMegabyteBodyIsRefusedWith413() throws {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.key)\r\nContent-Type: application/json\r\nContent-Length: \(100 << 20)\r\n\r\n"
        // Keep sending until the server answers or closes: at most 100 MB.
        let reply = try exchange(head, then: [UInt8](repeating: UInt8(ascii: " "), count: 1 << 20), times: 100)
        assertOpenAIError(reply, Case(name: "100 MB body", status: 413, code: "request_too_large"))
        try assertStillServing("a 100 MB body")
    }

    /// The same 100 MB sent chunked (no length to refuse up front): cut at the limit.
    func testAHundredMegabyteChunkedBodyIsCutAtTheLimit() throws {
        let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.key)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        let piece = [UInt8](repeating: UInt8(ascii: " "), count: 1 << 20)
        let chunk = Array(String(piece.count, radix: 16).utf8) + [13, 10] + piece + [13, 10]
        let reply = try exchange(head, then: chunk, times: 100)
        assertOpenAIError(reply, Case(name: "100 MB chunked body", status: 413))
        try assertStillServing("a 100 MB chunked body")
    }

    /// Headers far over the decoder's limits: NIO's decoder refuses them before any route runs;
    /// the head guard answers with 431 and an OpenAI error body (not NIO's bare 400).
    func testOversizedHeadersGet431WithAnErrorBody() throws {
        var head = "GET /health HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<2000 { head += "X-Filler-\(i): \(String(repeating: "y", count: 100))\r\n" }
        let reply = try exchange(head + "\r\n")
        assertOpenAIError(reply, Case(name: "oversized headers", status: 431, code: "request_header_fields_too_large", mentions: ["100 fields"]))
        XCTAssertEqual(reply.headers["connection"], "close")
        try assertStillServing("oversized headers")
    }

    /// One header line over the field size limit (16 KiB here) is refused the same way.
    func testOneHugeHeaderGets431() throws {
        let reply = try fixture.client.request("GET", "/health", headers: ["X-Huge": String(repeating: "z", count: 20 << 10)])
        assertOpenAIError(reply, Case(name: "one 20 KiB header", status: 431, code: "request_header_fields_too_large"))
        try assertStillServing("one huge header")
    }

    /// A request line that is not HTTP: 400 with an error body instead of the bare one.
    func testARequestLineThatIsNotHTTPGets400WithAnErrorBody() throws {
        let reply = try exchange("HELLO THERE\r\n\r\n")
        assertOpenAIError(reply, Case(name: "not HTTP", status: 400, code: "bad_http_request"))
        try assertStillServing("a request line that is not HTTP")
    }

    /// Slow-loris: a client that sends its headers a byte now and then never completes them; when
    /// the header timeout (the idle timeout, 2 s here) passes it gets 408 with an error body and the
    /// connection closes, while others are served meanwhile.
    func testSlowLorisHeadersGet408WithAnErrorBodyAndOthersAreServed() throws {
        let client = fixture.client
        let fd = try client.connect(timeout: 30)
        defer { close(fd) }
        let start = Date()
        let partial = Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8)
        var received: [UInt8] = []
        for byte in partial + Array(repeating: UInt8(ascii: "a"), count: 40) {
            if !client.send(fd, [byte]) { break }
            try assertStillServing("a slow-loris byte")
            var probe = [UInt8](repeating: 0, count: 4096)
            var tv = timeval(tv_sec: 0, tv_usec: 300_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let n = recv(fd, &probe, probe.count, 0)
            if n == 0 { break }
            if n > 0 { received += probe[0..<n]; break }
            if Date().timeIntervalSince(start) > 20 { break }
        }
        let elapsed = Date().timeIntervalSince(start)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        received += client.readToEnd(fd)
        let reply = try HTTPTestClient.parse(received)
        assertOpenAIError(reply, Case(name: "slow-loris headers", status: 408, code: "request_timeout"))
        XCTAssertGreaterThanOrEqual(elapsed, 1.5, "not before the timeout (2 s)")
        XCTAssertLessThan(elapsed, 15, "within the timeout and a margin")
        try assertStillServing("a slow-loris client")
    }

    /// A connection that sends nothing at all is closed at the timeout without a word (no 408:
    /// no request was begun).
    func testASilentConnectionIsClosedWithoutAnAnswer() throws {
        let client = fixture.client
        let fd = try client.connect(timeout: 15)
        defer { close(fd) }
        let start = Date()
        let bytes = client.readToEnd(fd)
        XCTAssertEqual(bytes.count, 0, String(decoding: bytes, as: UTF8.self))
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.5)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "closed at the timeout, not left open")
        try assertStillServing("a silent connection")
    }
}
