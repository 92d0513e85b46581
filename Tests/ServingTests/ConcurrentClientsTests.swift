import Foundation
import Serving
import XCTest

/// Sixteen clients at once over three adapters and the base: every answer is the one the same
/// request gets alone, and the KV caches are freed when the answers end.
final class ConcurrentClientsTests: XCTestCase {
    func testSixteenConcurrentClientsOverThreeAdaptersAndTheBaseGetTheirSequentialGreedyText() throws {
        let fixture = try ServerFixture(limits: EngineLimits(maxConcurrent: 16, maxQueued: 16, context: 1024, maxTokensCap: 64))
        defer { fixture.stop() }
        let path = try ServerFixture.writeCheckpoint(fixture.directory + "/gamma.h5", target: "self_attn.o_proj", seed: 77)
        XCTAssertEqual(try fixture.client.request("POST", "/v1/adapters", json: ["name": "gamma", "path": path]).status, 201)
        let models = ["smollm2", "alpha", "beta", "gamma"]
        let questions = ["What is a monad?", "What is a compiler?", "Define recursion.", "What is TCP?"]
        // Request i: model i % 4, question i / 4 (every model asked every question), some streamed.
        let requests: [(model: String, question: String, stream: Bool)] = (0..<16).map { i in
            (models[i % 4], questions[i / 4], i % 3 == 0)
        }
        @Sendable func ask(_ r: (model: String, question: String, stream: Bool)) throws -> String {
            let body: [String: Any] = ["model": r.model, "messages": [["role": "user", "content": r.question]], "temperature": 0,
                                       "max_tokens": 10, "stream": r.stream]
            let reply = try fixture.client.request("POST", "/v1/chat/completions", json: body)
            guard reply.status == 200 else { return "HTTP \(reply.status): \(reply.text)" }
            if !r.stream {
                return ((reply.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String ?? "?"
            }
            return reply.events.dropLast().compactMap { payload -> String? in
                let chunk = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any]
                return ((chunk?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String
            }.joined()
        }
        let sequential = try requests.map(ask)
        XCTAssertGreaterThanOrEqual(Set(sequential).count, 8, "the models and questions give different texts: \(sequential)")

        let results = ResultBox(count: requests.count)
        let start = Date()
        // One thread per client, all at once (concurrentPerform would run only as many as there are cores).
        let group = DispatchGroup()
        let inFlight = ResultBox(count: 1)
        for i in requests.indices {
            group.enter()
            Thread {
                results.set(i, (try? ask(requests[i])) ?? "client error")
                group.leave()
            }.start()
        }
        // While they run, the server holds all 16 sequences at once.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let running = try? fixture.client.request("GET", "/health").json["running"] as? Int, running >= 16 {
                inFlight.set(0, "16")
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        group.wait()
        XCTAssertEqual(inFlight.values[0], "16", "16 sequences decoded at once")
        let concurrentSeconds = Date().timeIntervalSince(start)
        for i in requests.indices {
            XCTAssertEqual(results.values[i], sequential[i], "request \(i) (\(requests[i].model), \(requests[i].question))")
        }
        let freed = try fixture.client.waitForHealth(timeout: 30) { $0["running"] as? Int == 0 && $0["completed"] as? Int == 32 }
        XCTAssertTrue(freed, "every sequence (and its KV cache) is gone: \(String(describing: try? fixture.client.request("GET", "/health").json))")
        print("16 concurrent requests in \(String(format: "%.1f", concurrentSeconds)) s")
    }

    final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var values: [String]
        init(count: Int) { values = Array(repeating: "", count: count) }
        func set(_ i: Int, _ value: String) { lock.withLock { values[i] = value } }
    }
}
