import ArgumentParser
import Foundation
import Lorikeet
import TensorCore
import Tokenization

/// Tokenizer throughput on one core, on real text (FOLDOC by default).
struct BenchTokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenizer throughput on one core (MB/s of UTF-8 text), first and warm passes.")

    @Option(help: "A .gguf file or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "A UTF-8 text file (default: the FOLDOC dictionary, decompressed).") var file: String?
    @Option(help: "Megabytes of the text to use.") var megabytes = 4

    func run() throws {
        let tokenizer = try ModelText(loading: model).tokenizer
        var text = try file.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? foldoc()
        let limit = megabytes << 20
        if text.utf8.count > limit {
            let cut = text.utf8.index(text.utf8.startIndex, offsetBy: limit)
            text = String(text[..<(text.index(cut, offsetBy: 0, limitedBy: text.endIndex) ?? text.endIndex)])
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let bytes = Double(text.utf8.count)
        print(String(format: "model %@, %.2f MB of text in %d lines, one thread", model, bytes / 1e6, lines.count))
        for pass in ["first pass (cold word cache)", "second pass (warm)"] {
            let start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for line in lines { count += try tokenizer.encode(line, addBOS: false, parseSpecial: false).count }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "%@: %.2f MB/s, %d tokens (%.2f bytes/token)", pass, bytes / seconds / 1e6, count, bytes / Double(count)))
        }
        print(BenchTiming.peakMemoryLine)
    }

    /// The FOLDOC dictionary text (Debian's dict-foldoc), via gzip.
    func foldoc() throws -> String {
        let path = "/usr/share/dictd/foldoc.dict.dz"
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path) is missing: run scripts/setup.sh or pass --file") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CLIError("gzip could not read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }
}
