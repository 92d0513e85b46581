import CBLAS
import Foundation
import TensorCore

/// Timing and reporting shared by the benchmarks.
enum BenchTiming {
    /// Wall-clock seconds of one call.
    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Wall-clock seconds of one throwing call.
    static func throwingSeconds(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// C[m, n] = A[m, k] · B[n, k]ᵀ by `cblas_sgemm` with OpenBLAS's own threads (as many as
    /// the engine's): the raw baseline. The engine keeps OpenBLAS single-threaded and cuts
    /// products into blocks over its own pool (`gemm`), so this is what that is measured against.
    static func rawSgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        openblas_set_num_threads(Int32(Parallel.threadCount))
        defer { openblas_set_num_threads(Parallel.blasThreads) }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k), 0, c, Int32(n))
    }

    /// "peak RSS: …", the line every benchmark ends with.
    static var peakMemoryLine: String {
        "peak RSS: " + (ProcessMemory.peakResidentBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "n/a")
    }

    /// Runs a reference-stack script with the peers' Python (../shared/peers/setup.sh) and
    /// returns the last stdout line starting with `prefix`: its one-line report.
    static func peerReport(script: String, environment: [String: String], prefix: String, what: String) throws -> Substring {
        let python = (ProcessInfo.processInfo.environment["HOME"] ?? "") + "/.cache/lorikeet-peers/venv/bin/python"
        guard FileManager.default.fileExists(atPath: script), FileManager.default.fileExists(atPath: python) else {
            throw CLIError("\(what) needs \(script) and the peers' Python \(python): run ../shared/peers/setup.sh")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else {
            throw CLIError("\(what): the reference run failed (exit \(process.terminationStatus)): \(output.suffix(300))")
        }
        return line
    }
}
