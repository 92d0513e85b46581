import Foundation

/// Standard error, for everything that is not the command's product.
func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
}
