@testable import Evaluation
import XCTest

/// The definitions of eval's task metrics, case by case.
final class EvalMetricsTests: XCTestCase {
    func testExactMatchTrimsSurroundingWhitespaceOnly() {
        XCTAssertTrue(EvalMetrics(output: "  Paris\n", reference: "Paris", tokens: 2).exactMatch)
        XCTAssertTrue(EvalMetrics(output: "Paris", reference: "\tParis \r\n", tokens: 1).exactMatch)
        XCTAssertFalse(EvalMetrics(output: "paris", reference: "Paris", tokens: 1).exactMatch, "case is kept")
        XCTAssertFalse(EvalMetrics(output: "Paris.", reference: "Paris", tokens: 1).exactMatch, "punctuation is kept")
        XCTAssertFalse(EvalMetrics(output: "New  York", reference: "New York", tokens: 1).exactMatch, "inner whitespace is kept")
    }

    func testContainsMeansTheOutputContainsTheReference() {
        let m = EvalMetrics(output: "The capital is Paris, of course.", reference: " Paris ", tokens: 8)
        XCTAssertTrue(m.contains)
        XCTAssertFalse(m.exactMatch)
        XCTAssertFalse(EvalMetrics(output: "Paris", reference: "The capital is Paris", tokens: 1).contains, "not the other way round")
        XCTAssertTrue(EvalMetrics(output: "\nParis\n", reference: "Paris", tokens: 1).contains, "exact match implies contains")
        XCTAssertFalse(EvalMetrics(output: "PARIS", reference: "Paris", tokens: 1).contains)
        XCTAssertTrue(EvalMetrics.contains("anything", ""), "an empty reference occurs everywhere")
    }

    func testJSONValidMeansTheWholeTrimmedOutputParses() {
        let valid = ["{\"a\": [1, 2.5, null, true]}", "  [1, 2]\n", "42", "\"text\"", "null", "{}", "-0", "1e5", "-12.5E-3", "[[], {}]",
                     "\"\\u00e9\\n\\\"\"", "{\"é\": \"👋\"}", " { \"a\" : { \"b\" : [ false ] } } "]
        for valid in valid {
            XCTAssertTrue(EvalMetrics(output: valid, reference: "x", tokens: 1).jsonValid, valid)
        }
        let invalid = ["", "   ", "{\"a\": 1} and more", "{'a': 1}", "{\"a\": 1,}", "[1,]", "[1, 2", "Here is the JSON: {}", "{\"a\": 1}{\"b\": 2}",
                       "NaN", "Infinity", "01", "1.", ".5", "+1", "1e", "{a: 1}", "\"a\tb\"", "\"\\x41\"", "\"\\u12G4\"", "[1] // comment",
                       "\"unterminated", "tru", "nulls", "{\"a\" 1}", "[1 2]"]
        for invalid in invalid {
            XCTAssertFalse(EvalMetrics(output: invalid, reference: "x", tokens: 1).jsonValid, invalid)
        }
    }

    func testDeepNestingIsBoundedNotACrash() {
        XCTAssertTrue(EvalMetrics.isJSON(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
        XCTAssertFalse(EvalMetrics.isJSON(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)))
    }

    func testLengthsAreTokensAsGivenAndCharactersUntrimmed() {
        let m = EvalMetrics(output: " héllo 👋🏽\n", reference: "x", tokens: 5)
        XCTAssertEqual(m.tokens, 5)
        XCTAssertEqual(m.characters, 9, "grapheme clusters, surrounding whitespace included")
    }

    func testMeansAreFractionsAndAverages() {
        let metrics = [
            EvalMetrics(output: "A", reference: "A", tokens: 1),
            EvalMetrics(output: "A and B", reference: "B", tokens: 3),
            EvalMetrics(output: "[1]", reference: "C", tokens: 4),
            EvalMetrics(output: "D", reference: "E", tokens: 0),
        ]
        let means = EvalMetricMeans(metrics)
        XCTAssertEqual(means.examples, 4)
        XCTAssertEqual(means.exactMatch, 0.25)
        XCTAssertEqual(means.contains, 0.5)
        XCTAssertEqual(means.jsonValid, 0.25)
        XCTAssertEqual(means.tokens, 2)
        XCTAssertEqual(means.characters, (1 + 7 + 3 + 1) / 4)
    }
}
