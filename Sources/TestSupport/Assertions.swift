import TensorCore
import XCTest

/// Element-wise |actual − expected| ≤ atol + rtol·|expected|, reporting the worst element.
public func assertClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("assertClose: \(actual.count) values vs \(expected.count) expected. \(message())", file: file, line: line)
        return
    }
    var worst = -1, worstExcess: Float = 0
    for i in actual.indices {
        let excess = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        if !(excess <= 0), worst < 0 || excess > worstExcess || excess.isNaN {
            worst = i
            worstExcess = excess
        }
    }
    if worst >= 0 {
        XCTFail("assertClose: element \(worst) is \(actual[worst]), expected \(expected[worst]) (atol \(atol), rtol \(rtol)). \(message())",
                file: file, line: line)
    }
}

public func assertClose(_ actual: Tensor, _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-5,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual.scalars, expected, atol: atol, rtol: rtol, message(), file: file, line: line)
}

/// Fails unless `function`'s backward agrees with finite differences for every input that
/// requires a gradient.
public func assertGradientsMatch(_ inputs: [Tensor], epsilon: Float = 1e-2, atol: Float = 2e-3, rtol: Float = 2e-2,
                                 maxElements: Int = 400, _ message: @autoclosure () -> String = "",
                                 file: StaticString = #filePath, line: UInt = #line,
                                 _ function: ([Tensor]) -> Tensor) {
    let report = GradientCheck.run(inputs, epsilon: epsilon, atol: atol, rtol: rtol, maxElements: maxElements, function)
    XCTAssertGreaterThan(report.checked, 0, "gradient check compared nothing. \(message())", file: file, line: line)
    if !report.mismatches.isEmpty {
        let shown = report.mismatches.prefix(5).map(\.description).joined(separator: "; ")
        XCTFail("gradient check: \(report.mismatches.count)/\(report.checked) elements disagree (worst ratio \(report.worstRatio)): \(shown). \(message())",
                file: file, line: line)
    }
}
