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

    func testBenchTrainRanksRejectsBadArgumentsBeforeLaunching() {
        for arguments in [["--ranks", "1"], ["--ranks", "65"], ["--ranks", "2", "--threads-per-rank", "0"], ["--ranks", "2", "--transport", "udp"]] {
            XCTAssertThrowsError(try BenchTrain.parse(arguments).run(), "\(arguments)")
        }
        // A worker line the parent reads back.
        let line = "rank-report ranks=2 step=1.5 compute=1.25 allreduce=0.25 bytes=1024 tokens=512 buffer=0.01 small=2e-06 peak=400.0 model=SmolLM2"
        let report = BenchTrain.RankReport(line: Substring(line))
        XCTAssertEqual(report?.ranks, 2)
        XCTAssertEqual(report?.allReduceSeconds, 0.25)
        XCTAssertEqual(report?.line, line)
        XCTAssertNil(BenchTrain.RankReport(line: "rank-report ranks=2"))
    }
}
