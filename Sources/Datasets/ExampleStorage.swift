/// Where a dataset's encoded examples live: in memory (built by hand, or when no file could be
/// written), or in a mapped `TokenizedFile` (what loading a JSONL file gives, so a dataset
/// larger than memory trains).
enum ExampleStorage: Sendable {
    case memory([TokenizedExample])
    case mapped(TokenizedFile)

    var count: Int {
        switch self {
        case .memory(let examples): return examples.count
        case .mapped(let file): return file.count
        }
    }

    func length(_ i: Int) -> Int {
        switch self {
        case .memory(let examples): return examples[i].ids.count
        case .mapped(let file): return file.length(i)
        }
    }

    /// The first `prefix` tokens of example `i` (the fitted example when `prefix` is its fitted length).
    func example(_ i: Int, prefix: Int) -> TokenizedExample {
        switch self {
        case .memory(let examples):
            let e = examples[i]
            guard prefix < e.ids.count else { return e }
            return TokenizedExample(ids: Array(e.ids.prefix(prefix)), trained: Array(e.trained.prefix(prefix)))
        case .mapped(let file): return file.example(i, prefix: prefix)
        }
    }

    /// `example(i, prefix: prefix).trainedTargets`, without building the example.
    func trainedTargets(_ i: Int, prefix: Int) -> Int {
        switch self {
        case .memory(let examples):
            let trained = examples[i].trained
            return trained.prefix(prefix).dropFirst().lazy.filter { $0 }.count
        case .mapped(let file): return file.trainedTargets(i, prefix: prefix)
        }
    }

    /// Tells the storage a sequential pass is done with examples `range` (a mapping drops their pages).
    func passed(_ range: Range<Int>) {
        if case .mapped(let file) = self { file.releasePages(ofExamples: range) }
    }
}
