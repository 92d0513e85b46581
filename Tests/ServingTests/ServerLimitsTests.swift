import Foundation
import Formats
import Serving
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Slots, the queue and clients that go away; and SIGTERM on the real command.
final class ServerLimitsTests: XCTestCase {
    /// A raw prompt a greedy model keeps counting on, so a reply runs to max_tokens.
    static let counting = #"{"model": "smollm2", "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0, "max_tokens": 64, "stream": true}"#

    func health(_ client: HTTPTestClient) throws -> [String: Any] { try client.request("GET", "/health").json }

    /// Opens a streaming request and returns its socket once the first bytes of the answer arrived.
    func openStream(_ client: HTTPTestClient, waitForBytes: Bool) throws -> Int32 {
        let fd = try client.connect(timeout: 60)
        let body = Array(Self.counting.utf8)
        let head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        client.send(fd, Array(head.utf8) + body)
        if waitForBytes {
            var first = [UInt8](repeating: 0, count: 256)
            XCTAssertGreaterThan(recv(fd, &first, first.count, 0), 0, "the stream started")
        }
        return fd
    }

    func testAFullServerAnswers429WithRetryAfterAndClientsThatLeaveFreeTheirSlots() throws {
        let fixture = try ServerFixture(limits: EngineLimits(maxConcurrent: 1, maxQueued: 1, context: 512, maxTokensCap: 64))
        defer { fixture.stop() }
        let client = fixture.client
        let running = try openStream(client, waitForBytes: true)
        let queued = try openStream(client, waitForBytes: false)
        XCTAssertTrue(try client.waitForHealth(timeout: 10) { $0["running"] as? Int == 1 && $0["queued"] as? Int == 1 })
        let refused = try client.request("POST", "/v1/completions", raw: Array(Self.counting.utf8))
        XCTAssertEqual(refused.status, 429, refused.text)
        XCTAssertEqual(refused.headers["retry-after"], "1")
        XCTAssertEqual((refused.json["error"] as? [String: Any])?["type"] as? String, "rate_limit_error")

        // Both clients go away mid-answer: their sequences are dropped, not run to 64 tokens.
        close(running)
        close(queued)
        XCTAssertTrue(try client.waitForHealth() { $0["running"] as? Int == 0 && $0["queued"] as? Int == 0 }, "the slots are freed")
        let counts = try health(client)
        XCTAssertEqual(counts["cancelled"] as? Int, 2, "\(counts)")
        XCTAssertEqual(counts["completed"] as? Int, 0, "\(counts)")
        let after = try client.request("POST", "/v1/completions", raw: Array(#"{"model": "smollm2", "prompt": "Hi", "max_tokens": 2}"#.utf8))
        XCTAssertEqual(after.status, 200, after.text)
    }

    func testANonStreamingClientThatLeavesFreesItsSlot() throws {
        let fixture = try ServerFixture(limits: EngineLimits(maxConcurrent: 1, maxQueued: 0, context: 512, maxTokensCap: 64))
        defer { fixture.stop() }
        let client = fixture.client
        let fd = try client.connect()
        let body = Array(Self.counting.replacingOccurrences(of: #""stream": true"#, with: #""stream": false"#).utf8)
        client.send(fd, Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        XCTAssertTrue(try client.waitForHealth(timeout: 10) { $0["running"] as? Int == 1 })
        close(fd)
        XCTAssertTrue(try client.waitForHealth() { $0["running"] as? Int == 0 })
        XCTAssertEqual(try health(client)["cancelled"] as? Int, 1)
    }

    /// `lorikeet serve` under SIGTERM: the running stream finishes, new requests get 503, the
    /// process exits 0 within the grace period.
    func testSIGTERMFinishesRunningStreamsRefusesNewOnesAndExits() throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerFixture.executable)
        process.arguments = ["serve", "--model", CacheLocation.embeddedModel, "--model-name", "smollm2", "--port", "0", "--grace", "60",
                             "--max-tokens-cap", "64"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // "serving smollm2 on http://127.0.0.1:PORT/v1 …"
        var port = 0, seen = ""
        let deadline = Date().addingTimeInterval(60)
        while port == 0, Date() < deadline {
            let data = err.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            if let range = seen.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(seen[range].split(separator: ":")[1]) ?? 0
            }
        }
        XCTAssertGreaterThan(port, 0, seen)
        let client = HTTPTestClient(port: port)
        let fd = try openStream(client, waitForBytes: true)
        defer { close(fd) }
        kill(process.processIdentifier, SIGTERM)
        Thread.sleep(forTimeInterval: 0.3)
        let refused = try client.request("POST", "/v1/completions", raw: Array(#"{"model": "smollm2", "prompt": "Hi", "max_tokens": 2}"#.utf8))
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertEqual((refused.json["error"] as? [String: Any])?["code"] as? String, "shutting_down")
        let rest = String(decoding: client.readToEnd(fd), as: UTF8.self)
        XCTAssertTrue(rest.contains("data: [DONE]"), "the running stream finished: \(rest.suffix(200))")
        let exitDeadline = Date().addingTimeInterval(30)
        while process.isRunning, Date() < exitDeadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(process.isRunning, "the server exits after its streams finished")
        if !process.isRunning { XCTAssertEqual(process.terminationStatus, 0) }
    }
}
