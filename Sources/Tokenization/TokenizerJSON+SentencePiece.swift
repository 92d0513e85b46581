import Formats
import Foundation

/// A Gemma GGUF's SentencePiece vocabulary (`tokenizer.ggml.model` "llama", architectures
/// gemma, gemma2, gemma3) written as the `tokenizer.json` transformers' own GGUF conversion
/// writes for it (`GemmaTokenizer` fed by `gguf_tokenizer_mapping.gemma_tokenizer`), so a
/// merged folder tokenizes in transformers and in Lorikeet as the GGUF does:
/// - tokens made of spaces only ("  ", stored by llama.cpp as real spaces) respelled as ▁ runs;
/// - a byte-fallback BPE whose merges are every split of a token into two vocabulary entries,
///   ranked by the token's position in the file (Gemma's scores do not follow its merge
///   order), longer left part first for splits of the same token;
/// - normalizer Replace(" ", "▁"), pre-tokenizer Split(" ", merged with previous) (a no-op after
///   that normalizer, kept because transformers writes it), BOS from a template post-processor,
///   decoder Replace/ByteFallback/Fuse;
/// - control tokens as special added tokens, user-defined ones ("\n", "[multimodal]") as plain
///   added tokens, matched whole before BPE.
/// The vocabulary is written by hand: a Swift dictionary keyed by `String` would merge keys
/// that are canonically equivalent but distinct pieces (Gemma has "য়" and "য" + U+09BC).
extension TokenizerJSONExport {
    /// GGUF architectures whose SentencePiece vocabulary `gemmaFiles` spells.
    static let gemmaArchitectures: Set<String> = ["gemma", "gemma2", "gemma3"]

    /// Whether `files(gguf:chatTemplate:)` can write this file's tokenizer.
    public static func canWrite(gguf file: GGUFFile) -> Bool {
        let m = file.metadata
        switch m["tokenizer.ggml.model"]?.string {
        case "gpt2": return true
        case "llama": return gemmaArchitectures.contains(m["general.architecture"]?.string ?? "")
        default: return false
        }
    }

    static func gemmaFiles(gguf file: GGUFFile, chatTemplate: String?) throws(TokenizerError) -> (tokenizer: Data, config: Data) {
        let m = file.metadata
        let original = try file.tokenizerTokens()
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        guard types.count == original.count else {
            throw .malformed("\(file.path): \(original.count) tokens but \(types.count) token types")
        }
        let tokens = original.map(respelledSpaces)
        // Piece bytes → id; a repeated piece keeps its last id, as a Python dict built in order does.
        var ids: [ArraySlice<UInt8>: Int] = [:]
        ids.reserveCapacity(tokens.count)
        let bytes = tokens.map { ArraySlice($0.utf8) }
        for (id, piece) in bytes.enumerated() { ids[piece] = id }
        let kept = (0..<tokens.count).filter { ids[bytes[$0]] == $0 }
        func token(_ key: String) -> String? { m[key]?.int.flatMap { $0 >= 0 && $0 < tokens.count ? tokens[$0] : nil } }

        var json = JSONBytes()
        json.raw(#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":["#)
        var first = true
        for (id, type) in types.enumerated() {
            // 3 control: special; 4 user-defined: added but not special, unless respelled away.
            guard type == 3 || (type == 4 && ids[ArraySlice(original[id].utf8)] != nil) else { continue }
            if !first { json.raw(",") }
            first = false
            json.raw(#"{"id":\#(id),"content":"#)
            json.string(original[id])
            json.raw(#","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":\#(type == 3)}"#)
        }
        json.raw(#"],"normalizer":{"type":"Replace","pattern":{"String":" "},"content":"▁"}"#)
        json.raw(#","pre_tokenizer":{"type":"Split","pattern":{"String":" "},"behavior":"MergedWithPrevious","invert":false}"#)
        json.raw(#","post_processor":"#)
        try json.object(templateProcessing(bos: (m["tokenizer.ggml.add_bos_token"]?.bool ?? true) ? token("tokenizer.ggml.bos_token_id") : nil,
                                           eos: (m["tokenizer.ggml.add_eos_token"]?.bool ?? false) ? token("tokenizer.ggml.eos_token_id") : nil,
                                           ids: ids), source: file.path)
        json.raw(#","decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"}]}"#)
        json.raw(#","model":{"type":"BPE","dropout":null,"unk_token":"#)
        if let unknown = token("tokenizer.ggml.unknown_token_id") { json.string(unknown) } else { json.raw("null") }
        json.raw(#","continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,"vocab":{"#)
        for (n, id) in kept.enumerated() {
            if n > 0 { json.raw(",") }
            json.string(tokens[id])
            json.raw(":\(id)")
        }
        json.raw(#"},"merges":["#)
        first = true
        for id in kept {
            for split in splits(bytes[id], in: ids) {
                if !first { json.raw(",") }
                first = false
                json.raw("[")
                json.bytes(split.left)
                json.raw(",")
                json.bytes(split.right)
                json.raw("]")
            }
        }
        json.raw("]}}")

        var config: [String: Any] = [
            "backend": "tokenizers", "tokenizer_class": "GemmaTokenizer", "clean_up_tokenization_spaces": false,
            "add_bos_token": m["tokenizer.ggml.add_bos_token"]?.bool ?? true, "add_eos_token": m["tokenizer.ggml.add_eos_token"]?.bool ?? false,
            "model_max_length": m["\(m["general.architecture"]?.string ?? "gemma").context_length"]?.int ?? 8192,
        ]
        for (field, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
            if let t = token("tokenizer.ggml." + key) { config[field] = t }
        }
        if ids[ArraySlice("<mask>".utf8)] != nil { config["mask_token"] = "<mask>" }
        if let chatTemplate { config["chat_template"] = chatTemplate }
        do {
            return (Data(json.out), try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw .malformed("\(file.path): cannot encode tokenizer_config.json (\(error.localizedDescription))")
        }
    }

    /// A token of spaces only (at least one " ", other whitespace allowed, as Python's
    /// `" " in t and not t.strip()`) becomes as many ▁ as it has characters.
    static func respelledSpaces(_ token: String) -> String {
        let scalars = token.unicodeScalars
        guard scalars.contains(" "), scalars.allSatisfy(isPythonSpace) else { return token }
        return String(repeating: "▁", count: scalars.count)
    }

    /// Python's `str.isspace` for one code point: Unicode whitespace plus the separators U+001C–U+001F.
    static func isPythonSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace || (0x1C...0x1F).contains(s.value) }

    /// The splits of `piece` into two vocabulary entries, at code-point boundaries, longest
    /// left part first (transformers' `generate_merges` order for one token).
    static func splits(_ piece: ArraySlice<UInt8>, in ids: [ArraySlice<UInt8>: Int]) -> [(left: ArraySlice<UInt8>, right: ArraySlice<UInt8>)] {
        // Code-point starts: every byte that is not a UTF-8 continuation byte, after the first.
        let cuts = piece.indices.dropFirst().filter { piece[$0] & 0xC0 != 0x80 }
        return cuts.reversed().compactMap { cut in
            let left = piece[..<cut], right = piece[cut...]
            return ids[left] != nil && ids[right] != nil ? (left, right) : nil
        }
    }

    /// A TemplateProcessing post-processor putting `bos` before and `eos` after each sequence.
    static func templateProcessing(bos: String?, eos: String?, ids: [ArraySlice<UInt8>: Int]) -> [String: Any] {
        var specials: [String: Any] = [:]
        func special(_ t: String?, _ typeID: Int) -> [[String: Any]] {
            guard let t, let id = ids[ArraySlice(t.utf8)] else { return [] }
            specials[t] = ["id": t, "ids": [id], "tokens": [t]]
            return [["SpecialToken": ["id": t, "type_id": typeID]]]
        }
        func sequence(_ name: String, _ typeID: Int) -> [[String: Any]] {
            special(bos, typeID) + [["Sequence": ["id": name, "type_id": typeID]]] + special(eos, typeID)
        }
        return ["type": "TemplateProcessing", "single": sequence("A", 0), "pair": sequence("A", 0) + sequence("B", 1), "special_tokens": specials]
    }
}

/// JSON text built byte by byte, so strings keep their exact code points.
struct JSONBytes {
    var out: [UInt8] = []

    mutating func raw(_ s: String) { out.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) { bytes(ArraySlice(s.utf8)) }

    /// A JSON string of UTF-8 `b`: quote, backslash and control bytes escaped, the rest as is.
    mutating func bytes(_ b: ArraySlice<UInt8>) {
        out.append(0x22)
        for byte in b {
            switch byte {
            case 0x22, 0x5C: out.append(0x5C); out.append(byte)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 15)])
            default: out.append(byte)
            }
        }
        out.append(0x22)
    }

    /// A small object of plain keys and values, through JSONSerialization.
    mutating func object(_ value: [String: Any], source: String) throws(TokenizerError) {
        do { out.append(contentsOf: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) } catch {
            throw .malformed("\(source): cannot encode tokenizer.json (\(error.localizedDescription))")
        }
    }
}
