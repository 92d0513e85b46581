import Foundation

/// The tokenizer a Hugging Face `tokenizer.json` describes. Read: the BPE model (vocab; merges
/// spelled "a b" or ["a", "b"]; ignore_merges), added tokens, the NFC normalizer and the
/// byte-level pre-tokenizers of GPT-2, SmolLM2, Llama 3 and Qwen2; with byte_fallback, the
/// SentencePiece-style spellings of Llama 2, Mistral, Phi-3 and Gemma (Prepend/Replace
/// normalizers or a Metaspace pre-tokenizer). BOS comes from a TemplateProcessing
/// post-processor and, when present, the tokenizer_config.json beside it. Anything else is
/// refused by name rather than tokenized differently from the reference.
public func makeTokenizer(tokenizerJSON path: String) throws(TokenizerError) -> any Tokenizer {
    guard let data = FileManager.default.contents(atPath: path) else { throw .malformed("\(path): cannot read the file") }
    let configPath = (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
    let config = FileManager.default.contents(atPath: configPath).map { [UInt8]($0) }
    return try TokenizerJSON.load([UInt8](data), source: path, config: config)
}

enum TokenizerJSON {
    static func load(_ bytes: [UInt8], source: String, config configBytes: [UInt8]? = nil) throws(TokenizerError) -> any Tokenizer {
        let root = try parse(bytes, source: source)
        let config = try configBytes.map { (b) throws(TokenizerError) in try parse(b, source: source + " (tokenizer_config.json)") }
        guard let model = root["model"], case .object = model else { throw .malformed("\(source): no \"model\" object") }
        let type = model["type"]?.stringValue ?? "BPE"
        guard type == "BPE" else {
            throw .unsupported("\(source): model type '\(type)' is not supported (supported: BPE)")
        }
        guard case .object(let vocab)? = model["vocab"] else {
            throw .malformed("\(source): model.vocab is missing or not an object")
        }
        // Tokens by id: the vocabulary, then added tokens (which may extend it).
        var byID: [Int: String] = [:]
        byID.reserveCapacity(vocab.count)
        for (key, value) in vocab {
            guard case .int(let id) = value, id >= 0, id < 1 << 24 else {
                throw .malformed("\(source): model.vocab[\(key.debugDescription)] is not a token id")
            }
            byID[id] = key
        }
        var specialIDs: [Int] = [], plainAddedIDs: [Int] = []
        for (n, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard case .int(let id)? = entry["id"], id >= 0, id < 1 << 24, let content = entry["content"]?.stringValue else {
                throw .malformed("\(source): added_tokens[\(n)] needs an integer id and a content string")
            }
            byID[id] = content
            specialIDs.append(id)
            if entry["special"]?.boolValue == false { plainAddedIDs.append(id) }
        }
        let count = (byID.keys.max() ?? -1) + 1
        guard count > 0 else { throw .malformed("\(source): the vocabulary is empty") }
        // Ids are dense in real files; a stray huge id must not make us allocate millions of slots.
        guard count - byID.count <= max(1024, byID.count / 100) else {
            throw .malformed("\(source): token ids run to \(count - 1) but only \(byID.count) tokens are named")
        }
        // An id nobody names stays an empty string, which no text can produce.
        let tokens = (0..<count).map { byID[$0] ?? "" }
        var types = [Int](repeating: 1, count: count)
        for id in specialIDs { types[id] = 3 }

        guard let mergeValues = model["merges"]?.arrayValue else { throw .malformed("\(source): model.merges is missing or not an array") }
        var merges: [String] = []
        merges.reserveCapacity(mergeValues.count)
        for (n, value) in mergeValues.enumerated() {
            switch value {
            case .string(let s): merges.append(s)
            case .array(let pair) where pair.count == 2:
                guard let a = pair[0].stringValue, let b = pair[1].stringValue else { fallthrough }
                merges.append(a + " " + b)
            default: throw .malformed("\(source): model.merges[\(n)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        func id(ofToken value: RawJSON?) -> Int32? {
            // A token named by text or as {"content": text}.
            guard let text = value?.stringValue ?? value?["content"]?.stringValue else { return nil }
            return tokens.firstIndex(of: text).map(Int32.init)
        }
        var bos = id(ofToken: config?["bos_token"])
        let eos = id(ofToken: config?["eos_token"])
        var addBOS = config?["add_bos_token"]?.boolValue ?? false
        if let first = templateBOS(root["post_processor"]), let bosID = id(ofToken: .string(first)) {
            bos = bosID
            addBOS = true
        }
        if model["byte_fallback"]?.boolValue == true {
            // SentencePiece-style: <0xNN> vocabulary entries are the byte tokens.
            for (i, token) in tokens.enumerated() where types[i] == 1 && SentencePieceTokenizer.byteValue(token) != nil { types[i] = 6 }
            // Added tokens not marked special ("\n" in Gemma) are GGUF's user-defined pieces:
            // matched whole like control tokens, but ordinary pieces that merges may name.
            for id in plainAddedIDs { types[id] = 4 }
            let (prefix, split) = try spacing(normalizer: root["normalizer"], preTokenizer: root["pre_tokenizer"], source: source)
            return try SentencePieceTokenizer(tokens: tokens, scores: [Float](repeating: 0, count: tokens.count), tokenTypes: types,
                                              bos: bos, eos: eos, unknown: id(ofToken: model["unk_token"]), addBOS: addBOS,
                                              spacePrefix: prefix, splitBeforeSpaces: split, merges: merges, source: source)
        }
        let normalizer = try normalizer(root["normalizer"], source: source)
        let pre = try preTokenizer(root["pre_tokenizer"], source: source)
        return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre, bos: bos, eos: eos,
                                unknown: id(ofToken: model["unk_token"]), addBOS: addBOS,
                                ignoreMerges: model["ignore_merges"]?.boolValue ?? false, normalizer: normalizer, source: source)
    }

    static func parse(_ bytes: [UInt8], source: String) throws(TokenizerError) -> RawJSON {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("\(source): not UTF-8 text") }
        do { return try JSONReader.parseTree(text) } catch {
            throw .malformed("\(source): line \(error.line), column \(error.column): \(error.message)")
        }
    }

    static func normalizer(_ value: RawJSON?, source: String) throws(TokenizerError) -> Normalizer {
        guard let value, value.isPresent else { return .none }
        switch value["type"]?.stringValue {
        case "NFC": return .nfc
        case "Sequence" where (value["normalizers"]?.arrayValue ?? []).isEmpty: return .none
        case let type:
            throw .unsupported("\(source): normalizer '\(type ?? "?")' is not supported (supported: none, NFC)")
        }
    }

    /// How a SentencePiece-style tokenizer.json turns spaces into ▁: Llama 2's and Phi-3's
    /// normalizer Prepend("▁") + Replace(" ", "▁"), Gemma's Replace alone (with or without
    /// transformers' GemmaTokenizer pre-tokenizer Split(" ", merged with previous), which finds
    /// no space left after that normalizer), or a Metaspace pre-tokenizer (prepend_scheme
    /// first/always/never, split) with no normalizer.
    static func spacing(normalizer: RawJSON?, preTokenizer: RawJSON?, source: String) throws(TokenizerError) -> (SpacePrefix, Bool) {
        func fail(_ what: String) -> TokenizerError {
            .unsupported("\(source): \(what) is not supported for a byte-fallback BPE (supported: normalizer Prepend(\"▁\") + Replace(\" \", \"▁\") or Replace alone; pre_tokenizer Metaspace)")
        }
        func isSpaceReplace(_ v: RawJSON) -> Bool {
            v["type"]?.stringValue == "Replace" && v["pattern"]?["String"]?.stringValue == " " && v["content"]?.stringValue == "▁"
        }
        let hasPre = preTokenizer?.isPresent == true
        if let normalizer, normalizer.isPresent {
            if let pre = preTokenizer, hasPre, isSpaceReplace(normalizer), pre["type"]?.stringValue == "Split",
               pre["pattern"]?["String"]?.stringValue == " ", pre["behavior"]?.stringValue == "MergedWithPrevious", pre["invert"]?.boolValue != true {
                return (.none, false)
            }
            guard !hasPre else { throw fail("a normalizer together with pre_tokenizer \(preTokenizer?["type"]?.stringValue ?? "?")") }
            let steps = normalizer["type"]?.stringValue == "Sequence" ? (normalizer["normalizers"]?.arrayValue ?? []) : [normalizer]
            if steps.count == 1, isSpaceReplace(steps[0]) { return (.none, false) }
            if steps.count == 2, steps[0]["type"]?.stringValue == "Prepend", steps[0]["prepend"]?.stringValue == "▁", isSpaceReplace(steps[1]) {
                return (.everyStretch, false)
            }
            throw fail("normalizer " + steps.map { $0["type"]?.stringValue ?? "?" }.joined(separator: " + "))
        }
        guard let pre = preTokenizer, hasPre else { throw fail("no normalizer and no pre_tokenizer") }
        guard pre["type"]?.stringValue == "Metaspace", (pre["replacement"]?.stringValue ?? "▁") == "▁" else {
            throw fail("pre_tokenizer \(pre["type"]?.stringValue ?? "?")")
        }
        let split = pre["split"]?.boolValue ?? true
        switch pre["prepend_scheme"]?.stringValue ?? (pre["add_prefix_space"]?.boolValue == false ? "never" : "always") {
        case "first": return (.firstUnlessSpace, split)
        case "always": return (.everyUnlessSpace, split)
        case "never": return (.none, split)
        case let other: throw fail("Metaspace prepend_scheme '\(other)'")
        }
    }

    /// The split patterns of Llama 3 and Qwen2, as their tokenizer.json files spell them.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Which scanner reproduces this pre-tokenizer; only shapes whose output is known equal.
    static func preTokenizer(_ value: RawJSON?, source: String) throws(TokenizerError) -> PreTokenizer {
        func fail(_ what: String) -> TokenizerError {
            .unsupported("\(source): pre_tokenizer \(what) is not supported (supported: ByteLevel; Sequence[Digits(individual), ByteLevel]; Sequence[Split(Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)])")
        }
        guard let value, value.isPresent else { throw fail("null") }
        let steps = value["type"]?.stringValue == "Sequence" ? (value["pretokenizers"]?.arrayValue ?? []) : [value]
        let names = steps.map { $0["type"]?.stringValue ?? "?" }
        let shape = names.count == 1 ? names[0] : "Sequence[\(names.joined(separator: ", "))]"
        guard let byteLevel = steps.last, byteLevel["type"]?.stringValue == "ByteLevel" else { throw fail(shape) }
        if byteLevel["add_prefix_space"]?.boolValue == true { throw fail("ByteLevel with add_prefix_space") }
        let useRegex = byteLevel["use_regex"]?.boolValue ?? true
        switch (names.count, useRegex) {
        case (1, true): return .gpt2
        case (2, true) where names[0] == "Digits" && steps[0]["individual_digits"]?.boolValue == true: return .digitsThenGPT2
        case (2, false) where names[0] == "Split":
            let split = steps[0]
            guard split["behavior"]?.stringValue == "Isolated", split["invert"]?.boolValue != true,
                  let pattern = split["pattern"]?["Regex"]?.stringValue else { throw fail("Split (not an isolated regex split)") }
            if pattern == llama3Pattern { return .llama3 }
            if pattern == qwen2Pattern { return .qwen2 }
            throw fail("Split with pattern \(pattern.debugDescription)")
        default: throw fail(shape)
        }
    }

    /// The special token a TemplateProcessing post-processor puts first (Llama 3's BOS), if any.
    static func templateBOS(_ value: RawJSON?) -> String? {
        guard let value, value.isPresent else { return nil }
        if value["type"]?.stringValue == "Sequence" {
            for step in value["processors"]?.arrayValue ?? [] { if let bos = templateBOS(step) { return bos } }
            return nil
        }
        guard value["type"]?.stringValue == "TemplateProcessing", let first = value["single"]?.arrayValue?.first else { return nil }
        return first["SpecialToken"]?["id"]?.stringValue
    }
}

/// A JSON document with objects kept as their key/value pairs: vocabulary keys must stay
/// distinct byte strings, and a Swift `[String: …]` merges canonically equivalent ones
/// (Gemma has both "য়" U+09DF and "য" + U+09BC).
enum RawJSON: JSONTree {
    case none, bool(Bool), int(Int), double(Double), string(String), array([RawJSON])
    case object([(String, RawJSON)])

    static func dictionary(_ pairs: [(String, RawJSON)]) -> RawJSON { .object(pairs) }

    /// The first value under `key` (structural keys are plain ASCII).
    subscript(key: String) -> RawJSON? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    var arrayValue: [RawJSON]? { if case .array(let a) = self { return a }; return nil }
    /// Not JSON null.
    var isPresent: Bool { if case .none = self { return false }; return true }
}
