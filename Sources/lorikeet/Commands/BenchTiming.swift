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

    /// "peak RSS: …", the line every benchmark ends with.
    static var peakMemoryLine: String {
        "peak RSS: " + (ProcessMemory.peakResidentBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "n/a")
    }
}
