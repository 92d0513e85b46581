@testable import LorikeetBench
import XCTest

/// The benchmarks refuse bad arguments before measuring anything.
final class BenchArgumentTests: XCTestCase {
    func testBenchGemmAndDataRejectBadArguments() {
        XCTAssertThrowsError(try BenchGemm.parse(["--shapes", "3x4"]).run())
        XCTAssertThrowsError(try BenchGemm.parse(["--repeats", "0"]).run())
        XCTAssertThrowsError(try BenchData.parse(["--data", "x.jsonl", "--threads", "0"]).run())
        XCTAssertThrowsError(try BenchData.parse(["--data", "/nonexistent/x.jsonl", "--repeats", "1"]).run()) {
            XCTAssertTrue("\($0)".contains("/nonexistent/x.jsonl"), "\($0)")
        }
    }
}
