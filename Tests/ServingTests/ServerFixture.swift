import Architectures
import Formats
import Foundation
import LoRA
import Serving
import TestSupport
import Training
import XCTest

/// A server over the embedded SmolLM2 with two adapters, on a free loopback port, shared by a
/// test class; and `lorikeet generate` as the user runs it, for the texts the server must give.
final class ServerFixture: @unchecked Sendable {
    let directory: String
    let server: LorikeetServer
    let port: Int
    let client: HTTPTestClient
    /// Adapter name → checkpoint path.
    let adapters: [String: String]
    private let task: Task<Void, Never>

    /// Skips (XCTSkip) when SmolLM2 is not cached.
    init(limits: EngineLimits = EngineLimits(maxConcurrent: 4, maxQueued: 8, context: 2048, maxTokensCap: 256),
         maxBodyBytes: Int = 1 << 20, idleTimeout: Int = 30, gracePeriod: Int = 30, apiKey: String? = nil) throws {
        guard FileManager.default.fileExists(atPath: CacheLocation.embeddedModel) else { throw XCTSkip("embedded model missing: run scripts/setup.sh") }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-serve-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        adapters = [
            "alpha": try Self.writeCheckpoint(directory + "/alpha.h5", target: "self_attn.q_proj", seed: 1),
            "beta": try Self.writeCheckpoint(directory + "/beta.h5", target: "self_attn.v_proj", seed: 1000),
        ]
        let options = ServeOptions(model: CacheLocation.embeddedModel, modelName: "smollm2",
                                   adapters: adapters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, host: "127.0.0.1", port: 0,
                                   apiKey: apiKey, limits: limits, maxBodyBytes: maxBodyBytes, idleTimeout: idleTimeout, gracePeriod: gracePeriod)
        let server = try LorikeetServer(options: options)
        self.server = server
        let ready = DispatchSemaphore(value: 0)
        let bound = PortBox()
        task = Task.detached {
            do {
                try await server.run { port in
                    bound.port = port
                    ready.signal()
                }
            } catch {
                ready.signal()
            }
        }
        guard ready.wait(timeout: .now() + 60) == .success, bound.port > 0 else { throw XCTSkip("the server did not start") }
        port = bound.port
        client = HTTPTestClient(port: port)
    }

    func stop() {
        server.shutdown()
        task.cancel()
        try? FileManager.default.removeItem(atPath: directory)
    }

    final class PortBox: @unchecked Sendable { var port = 0 }

    /// A checkpoint over SmolLM2 (f32 base) with a random rank-2 adapter on `target` in every
    /// layer, large enough to change greedy replies.
    static func writeCheckpoint(_ path: String, target: String, seed: UInt64) throws -> String {
        var document = RecipeDocument()
        let short = String(target.split(separator: ".").last ?? "q_proj")
        for s in ["lora.rank=2", "lora.alpha=2", "lora.dropout=0", "lora.targets=\(short)", "quantization.base=f32"] { try document.override(s) }
        var archive = HDF5Archive()
        archive.strings["recipe"] = try Recipe(document).yaml
        let width = short == "v_proj" ? 192 : 576  // SmolLM2: 9 heads × 64, 3 KV heads × 64
        for layer in 0..<30 {
            let module = WeightNames.layer(layer, target)
            for (which, shape) in [("A", [2, 576]), ("B", [width, 2])] {
                let t = Fixtures.tensor(shape, seed: seed + UInt64(layer * 2 + (which == "A" ? 0 : 1)), requiresGrad: false, scale: 0.2)
                archive.floatArrays["adapter/" + LoRAAdapter.pefName(module, which)] = .init(shape: shape, values: t.scalars)
            }
        }
        try archive.write(to: path)
        return path
    }

    /// The built `lorikeet` beside the test bundle.
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("lorikeet").path
    }

    /// What `lorikeet generate --temperature 0` prints on stdout (without its final newline).
    func generate(prompt: String, adapter: String?, maxTokens: Int, raw: Bool = false, stop: [String] = []) throws -> String {
        var arguments = ["generate", "--model", CacheLocation.embeddedModel, "--prompt", prompt, "--temperature", "0",
                         "--max-tokens", "\(maxTokens)"]
        if let adapter { arguments += ["--adapter", adapters[adapter] ?? adapter] }
        if raw { arguments.append("--raw") }
        for s in stop { arguments += ["--stop", s] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LORIKEET_CACHE"] = directory + "/cache"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, String(decoding: stderr, as: UTF8.self))
        var text = String(decoding: stdout, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
