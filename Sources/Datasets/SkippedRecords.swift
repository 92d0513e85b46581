/// Why a record could not become an example.
public enum InvalidRecord: String, Sendable, CaseIterable, Comparable {
    case invalidUTF8 = "not valid UTF-8"
    case malformedJSON = "malformed JSON"
    case unknownLayout = "not a record of the dataset's format"
    case missingField = "missing field"
    case wrongType = "wrong type"
    case unknownRole = "unknown role"
    case emptyAssistantTurn = "empty assistant turn"
    case noAssistantTurn = "no assistant turn"
    case unrenderable = "cannot be rendered or tokenized"

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }
}

/// Records left out under `data.skip_invalid`: a count per reason and the first few of each,
/// so that nothing is ever dropped without the user seeing what and where.
public struct SkippedRecords: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        public var path: String
        public var line: Int
        public var column: Int?
        public var reason: String
        /// `path:line[:column]: reason`, as compilers print it (editors jump there).
        public var description: String { "\(path):\(line)" + (column.map { ":\($0)" } ?? "") + ": \(reason)" }
    }

    /// Samples kept per reason.
    public static let samplesPerReason = 3

    public private(set) var counts: [InvalidRecord: Int] = [:]
    /// The first `samplesPerReason` records of each reason, by file then line.
    public private(set) var samples: [InvalidRecord: [Sample]] = [:]

    public init() {}

    public var total: Int { counts.values.reduce(0, +) }
    public var isEmpty: Bool { counts.isEmpty }

    public mutating func add(_ kind: InvalidRecord, path: String, line: Int, column: Int? = nil, reason: String) {
        counts[kind, default: 0] += 1
        var list = samples[kind, default: []]
        list.append(Sample(path: path, line: line, column: column, reason: reason))
        list.sort { ($0.path, $0.line) < ($1.path, $1.line) }
        samples[kind] = Array(list.prefix(Self.samplesPerReason))
    }

    /// Puts back a reason's count and samples as saved (tokenization cache).
    mutating func restore(_ kind: InvalidRecord, count: Int, samples: [Sample]) {
        counts[kind] = count
        self.samples[kind] = samples
    }

    public mutating func merge(_ other: SkippedRecords) {
        for kind in InvalidRecord.allCases {
            guard let n = other.counts[kind] else { continue }
            counts[kind, default: 0] += n
            samples[kind] = Array(((samples[kind] ?? []) + (other.samples[kind] ?? [])).sorted { ($0.path, $0.line) < ($1.path, $1.line) }
                .prefix(Self.samplesPerReason))
        }
    }

    /// "3 invalid records skipped: 2 malformed JSON, 1 unknown role", then one sample a line.
    public var report: [String] {
        guard !isEmpty else { return [] }
        let kinds = counts.keys.sorted()
        var lines = ["\(total) invalid record\(total == 1 ? "" : "s") skipped: " + kinds.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")]
        for kind in kinds {
            for sample in samples[kind] ?? [] { lines.append("  " + sample.description) }
            if let n = counts[kind], n > Self.samplesPerReason { lines.append("  … and \(n - Self.samplesPerReason) more \(kind.rawValue)") }
        }
        return lines
    }
}

extension SkippedRecords {
    /// The skipped records of several datasets together (a training and a validation set).
    public static func of(_ datasets: [TokenizedDataset?]) -> SkippedRecords {
        var all = SkippedRecords()
        for dataset in datasets { if let dataset { all.merge(dataset.statistics.skipped) } }
        return all
    }
}
