/// Cuts text around special-token strings (`<|im_start|>`, `</s>`, …) before the model's own
/// splitting runs. Matching is on UTF-8 bytes, as the reference tokenizers match, so a
/// combining mark after `>` does not hide the token; at each position the longest token wins.
struct SpecialTokenSplitter: Sendable {
    enum Segment { case text(Substring), special(Int32) }

    /// Candidates by first byte, longest first.
    let byFirstByte: [UInt8: [(bytes: [UInt8], id: Int32)]]
    /// byte → whether some token starts with it (keeps the scan to one array read a byte).
    let starts: [Bool]

    init(_ specialTokens: [String: Int32]) {
        var table: [UInt8: [(bytes: [UInt8], id: Int32)]] = [:]
        for (text, id) in specialTokens {
            let bytes = Array(text.utf8)
            guard let first = bytes.first else { continue }
            table[first, default: []].append((bytes, id))
        }
        byFirstByte = table.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } }
        var starts = [Bool](repeating: false, count: 256)
        for b in table.keys { starts[Int(b)] = true }
        self.starts = starts
    }

    func segments(_ text: String, parseSpecial: Bool) -> [Segment] {
        guard parseSpecial, !byFirstByte.isEmpty else { return [.text(text[...])] }
        var result: [Segment] = []
        let utf8 = text.utf8
        var start = utf8.startIndex, i = utf8.startIndex
        while i < utf8.endIndex {
            if starts[Int(utf8[i])], let candidates = byFirstByte[utf8[i]],
               let match = candidates.first(where: { utf8[i...].starts(with: $0.bytes) }) {
                if start < i { result.append(.text(text[start..<i])) }
                result.append(.special(match.id))
                i = utf8.index(i, offsetBy: match.bytes.count)
                start = i
            } else {
                i = utf8.index(after: i)
            }
        }
        if start < utf8.endIndex { result.append(.text(text[start...])) }
        return result
    }
}
