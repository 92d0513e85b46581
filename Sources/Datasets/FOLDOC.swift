import CZlib
import Foundation
import TensorCore
import Tokenization

/// The Free On-line Dictionary of Computing in Debian's dictd form (`dict-foldoc`):
/// `foldoc.index` lines are `headword<TAB>offset<TAB>length` with base-64 numbers into the
/// gzip-compressed `foldoc.dict.dz`. Each entry starts with its headword lines (the name,
/// then aliases), a blank line, then the definition indented by three spaces.
public struct FOLDOC: Sendable {
    public struct Entry: Sendable, Equatable {
        public var term: String
        /// The definition as plain prose: cross-reference braces, the category tag, source
        /// notes and the revision date removed; paragraphs separated by a blank line.
        public var definition: String
    }

    public static let defaultDirectory = "/usr/share/dictd"
    public let entries: [Entry]

    /// Reads `foldoc.index` and `foldoc.dict.dz` from `directory`. Aliases that point at the
    /// same text become one entry (named by its first headword); the database's own
    /// `00-database-*` entries are skipped.
    public init(directory: String = FOLDOC.defaultDirectory) throws(DataError) {
        let indexPath = directory + "/foldoc.index", dictPath = directory + "/foldoc.dict.dz"
        guard let indexData = FileManager.default.contents(atPath: indexPath) else {
            throw .io(path: indexPath, reason: "cannot read the FOLDOC index (install Debian's dict-foldoc: apt-get install dict-foldoc)")
        }
        guard let compressed = FileManager.default.contents(atPath: dictPath) else {
            throw .io(path: dictPath, reason: "cannot read the FOLDOC dictionary (install Debian's dict-foldoc)")
        }
        let text = try Self.gunzip(compressed, path: dictPath)
        var seen = Set<Int>()
        var entries: [Entry] = []
        let index = String(decoding: indexData, as: UTF8.self)
        for (n, line) in index.split(separator: "\n").enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 3, let offset = Self.base64Number(fields[1]), let length = Self.base64Number(fields[2]) else {
                throw .record(path: indexPath, line: n + 1, reason: "expected 'headword<TAB>offset<TAB>length' with base-64 numbers")
            }
            guard offset >= 0, length >= 0, offset <= text.count - length else {
                throw .record(path: indexPath, line: n + 1, reason: "entry points outside the dictionary (\(offset)+\(length) > \(text.count) bytes)")
            }
            if fields[0].hasPrefix("00-database") || fields[0].hasPrefix("00database") || !seen.insert(offset).inserted { continue }
            if let entry = Self.entry(String(decoding: text[offset..<(offset + length)], as: UTF8.self)) { entries.append(entry) }
        }
        self.entries = entries
    }

    /// dictd's base-64 numbers: big-endian digits of A–Z a–z 0–9 + /.
    static func base64Number(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.count <= 10 else { return nil }
        var value = 0
        for c in s.utf8 {
            let digit: Int
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = Int(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = Int(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): digit = 62
            case UInt8(ascii: "/"): digit = 63
            default: return nil
            }
            value = value * 64 + digit
        }
        return value
    }

    /// One entry's text → term and cleaned definition (nil when nothing useful is left).
    static func entry(_ raw: String) -> Entry? {
        let lines = raw.split(separator: "\n", omittingEmptySubsequences: false)
        guard let term = lines.first.map({ $0.trimmingCharacters(in: .whitespaces) }), !term.isEmpty,
              let blank = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) else { return nil }
        // Cross-references may span lines, so braces go first, over the whole body; then
        // paragraphs (split at blank lines), each joined into one line.
        let body = plain(lines[blank...].joined(separator: "\n"))
        var paragraphs: [String] = []
        var current: [String] = []
        for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                if !current.isEmpty { paragraphs.append(current.joined(separator: " ")); current = [] }
            } else {
                current.append(trimmed)
            }
        }
        if !current.isEmpty { paragraphs.append(current.joined(separator: " ")) }
        var kept: [String] = []
        var length = 0
        for paragraph in paragraphs {
            let p = withoutCategoryTag(paragraph.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " "))
            if p.isEmpty || p.hasPrefix("[") || isDate(p) { continue }
            kept.append(p)
            length += p.count
            if length >= 400 { break }
        }
        let definition = kept.joined(separator: "\n\n")
        guard definition.count >= 20 else { return nil }
        return Entry(term: term, definition: definition)
    }

    /// `{text}` and `{text (url)}` cross-references → text. A brace between two equal quotes
    /// (`"}"`) is the character itself, not markup.
    static func plain(_ s: String) -> String {
        let chars = Array(s)
        var out = ""
        var braceText: String?
        for (i, c) in chars.enumerated() {
            let quoted = i > 0 && i + 1 < chars.count && (chars[i - 1] == "\"" || chars[i - 1] == "'") && chars[i + 1] == chars[i - 1]
            if c == "{" && braceText == nil && !quoted { braceText = ""; continue }
            if c == "}", let text = braceText {
                braceText = nil
                var t = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if t.hasSuffix(")"), let open = t.lastIndex(of: "(") { t = String(t[..<open]).trimmingCharacters(in: .whitespacesAndNewlines) }
                out += t.split(whereSeparator: { $0 == "\n" || $0 == " " }).joined(separator: " ")
                continue
            }
            if braceText != nil { braceText?.append(c) } else { out.append(c) }
        }
        if let text = braceText { out += "{" + text }
        return out
    }

    /// "<category, …> text" → "text"; a sense number stays ("1. <compiler> x" → "1. x").
    /// Tolerates the dictionary's typos in tags (`<networking<`, `<tool, cryptography}`).
    static func withoutCategoryTag(_ p: String) -> String {
        var number = ""
        var rest = Substring(p)
        if let dot = rest.firstIndex(of: "."), rest[..<dot].allSatisfy(\.isNumber), !rest[..<dot].isEmpty,
           rest[rest.index(after: dot)...].hasPrefix(" <") {
            number = String(rest[...dot]) + " "
            rest = rest[rest.index(dot, offsetBy: 2)...]
        }
        while rest.hasPrefix("<"), let close = rest.dropFirst().prefix(80).firstIndex(where: { $0 == ">" || $0 == "}" || $0 == "<" }) {
            rest = rest[rest.index(after: close)...].drop { $0 == " " }
        }
        return number + rest
    }

    static func isDate(_ p: String) -> Bool {
        p.count == 12 && p.hasPrefix("(") && p.hasSuffix(")") && p.dropFirst().dropLast().allSatisfy { $0.isNumber || $0 == "-" }
    }

    static func gunzip(_ data: Foundation.Data, path: String) throws(DataError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .io(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                }
                output += chunk[0..<(chunk.count - Int(stream.avail_out))]
            } while status == Z_OK
        }
        guard status == Z_STREAM_END else { throw .io(path: path, reason: "damaged gzip data (zlib status \(status))") }
        return output
    }
}

extension FOLDOC {
    /// Questions asked about a term; one is picked per entry from the seed.
    static let questions = [
        "What is %@ in computing?", "What does %@ mean?", "Define %@.", "Explain the term \"%@\".",
        "In computing, what is meant by %@?", "What is %@?",
    ]

    /// Chat examples (a question about a term → the dictionary's definition), shuffled by
    /// `seed` and split into train/valid/test. Deterministic given the seed.
    public func chatSplits(seed: UInt64, validFraction: Double = 0.02, testFraction: Double = 0.02) -> (train: [String], valid: [String], test: [String]) {
        var rng = RandomGenerator(seed: seed)
        let lines = entries.map { entry -> String in
            let question = Self.questions[Int(rng.next() % UInt64(Self.questions.count))].replacingOccurrences(of: "%@", with: entry.term)
            let messages: JinjaValue = .array([
                .dictionary([("role", .string("user")), ("content", .string(question))]),
                .dictionary([("role", .string("assistant")), ("content", .string(entry.definition))]),
            ])
            return JinjaValue.dictionary([("messages", messages)]).json()
        }
        let order = BatchStream.permutation(count: lines.count, seed: seed, epoch: 0)
        let nValid = Int((Double(lines.count) * validFraction).rounded()), nTest = Int((Double(lines.count) * testFraction).rounded())
        let valid = order[0..<nValid].map { lines[$0] }
        let test = order[nValid..<(nValid + nTest)].map { lines[$0] }
        let train = order[(nValid + nTest)...].map { lines[$0] }
        return (train, valid, test)
    }
}

extension FOLDOC {
    /// Writes `chatSplits` as `train.jsonl`, `valid.jsonl` and `test.jsonl` under `folder`, each
    /// written whole to a temporary name and renamed (never a half-written split); returns the
    /// number of examples in each.
    public func writeChatSplits(to folder: String, seed: UInt64, validFraction: Double, testFraction: Double) throws(DataError)
        -> (train: Int, valid: Int, test: Int) {
        let splits = chatSplits(seed: seed, validFraction: validFraction, testFraction: testFraction)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for (name, lines) in [("train", splits.train), ("valid", splits.valid), ("test", splits.test)] {
                let path = folder + "/\(name).jsonl"
                try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            }
        } catch { throw .io(path: folder, reason: "cannot write the dataset (\(error.localizedDescription))") }
        return (splits.train.count, splits.valid.count, splits.test.count)
    }
}
