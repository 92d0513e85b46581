import Foundation

/// An SVG of training and validation loss per step (no plotting library): what `lorikeet plot`
/// writes from a checkpoint's metrics.
public enum LossCurveChart {
    public static func svg(train: [(Double, Double)], validation: [(Double, Double)], title: String) -> String {
        let (w, h, m) = (720.0, 420.0, 56.0)
        let all = train + validation
        let x0 = 0.0, x1 = max(all.map(\.0).max() ?? 1, 1)
        var y0 = all.map(\.1).min() ?? 0, y1 = all.map(\.1).max() ?? 1
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        func px(_ x: Double) -> Double { m + (x - x0) / (x1 - x0) * (w - 2 * m) }
        func py(_ y: Double) -> Double { h - m - (y - y0) / (y1 - y0) * (h - 2 * m) }
        func polyline(_ points: [(Double, Double)], _ color: String) -> String {
            "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"" + points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ") + "\"/>"
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += String(format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", m, h - m, w - m, h - m)
        out += String(format: "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", m, m, m, h - m)
        for i in 0...4 {
            let y = y0 + (y1 - y0) * Double(i) / 4, x = x0 + (x1 - x0) * Double(i) / 4
            out += String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", m - 6, py(y) + 4, y)
            out += String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", px(x), h - m + 16, x)
        }
        out += polyline(train, "#1f77b4") + "\n"
        if !validation.isEmpty {
            out += polyline(validation, "#d62728") + "\n"
            for p in validation { out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>\n", px(p.0), py(p.1)) }
        }
        let escaped = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        out += "<text x=\"\(Int(m))\" y=\"24\" font-size=\"14\">\(escaped) — loss per step (blue: train, red: validation)</text>\n"
        out += "<text x=\"\(Int(w / 2))\" y=\"\(Int(h - 12))\" text-anchor=\"middle\">step</text>\n</svg>\n"
        return out
    }

    /// Writes `svg` to `path` atomically.
    public static func write(_ svg: String, to path: String) throws(EvaluationError) {
        do { try Data(svg.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw .report("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}
