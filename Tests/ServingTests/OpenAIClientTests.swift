import Foundation
import Serving
import XCTest

/// The official `openai` Python client against the server: at temperature 0 it gets, whole and
/// streamed, exactly what `lorikeet generate` prints, for the base and two adapters.
final class OpenAIClientTests: XCTestCase {
    static let python = NSHomeDirectory() + "/.cache/lorikeet-peers/venv/bin/python"
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/verify/openai_client_serve.py").path

    func testTheOpenAIPythonClientGetsGeneratesTextForTheBaseAndTwoAdapters() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else { throw XCTSkip("the peers venv is missing: run shared/peers/setup.sh") }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: Self.python)
        check.arguments = ["-c", "import openai"]
        try check.run()
        check.waitUntilExit()
        guard check.terminationStatus == 0 else { throw XCTSkip("the peers venv has no openai package") }

        let fixture = try ServerFixture(apiKey: "sk-lorikeet-test")
        defer { fixture.stop() }
        let question = "What is a monad?", maxTokens = 12
        var expected: [String: String] = [:]
        for (model, adapter) in [("smollm2", nil), ("alpha", "alpha"), ("beta", "beta")] as [(String, String?)] {
            expected[model] = try fixture.generate(prompt: question, adapter: adapter, maxTokens: maxTokens)
        }
        let spec: [String: Any] = ["question": question, "max_tokens": maxTokens, "expected": expected, "api_key": "sk-lorikeet-test"]
        let specPath = fixture.directory + "/expected.json"
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: specPath))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.script, "\(fixture.port)", specPath]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertEqual(output.components(separatedBy: "\n").filter { $0.hasPrefix("smollm2:") || $0.hasPrefix("alpha:") || $0.hasPrefix("beta:") }.count, 3, output)
    }
}
