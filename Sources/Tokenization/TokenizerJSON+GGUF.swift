import Formats
import Foundation

/// A GGUF file's byte-level BPE tokenizer (or a Gemma SentencePiece one: see
/// `TokenizerJSON+SentencePiece.swift`) written back as Hugging Face `tokenizer.json` and
/// `tokenizer_config.json`, so a merged model folder loads with `AutoTokenizer` and splits
/// text into the same ids Lorikeet does. The pre-tokenizer is spelled the way Hugging Face
/// spells the same split (`PreTokenizer` documents each pattern).
public enum TokenizerJSONExport {
    /// (tokenizer.json, tokenizer_config.json) for `file`, or an error naming what is neither
    /// byte-level BPE nor Gemma's SentencePiece vocabulary, or has no known Hugging Face spelling.
    public static func files(gguf file: GGUFFile, chatTemplate: String?) throws(TokenizerError) -> (tokenizer: Data, config: Data) {
        let m = file.metadata
        if m["tokenizer.ggml.model"]?.string == "llama", gemmaArchitectures.contains(m["general.architecture"]?.string ?? "") {
            return try gemmaFiles(gguf: file, chatTemplate: chatTemplate)
        }
        guard m["tokenizer.ggml.model"]?.string == "gpt2" else {
            throw .unsupported("\(file.path): writing tokenizer.json is supported for byte-level BPE (tokenizer.ggml.model gpt2) and Gemma's SentencePiece vocabulary only, not '\(m["tokenizer.ggml.model"]?.string ?? "none")' of architecture '\(m["general.architecture"]?.string ?? "none")'")
        }
        let preName = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = PreTokenizer(ggufName: preName) else {
            throw .unsupported("\(file.path): pre-tokenizer '\(preName)' has no Hugging Face spelling in Lorikeet yet")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.compactMap(\.string),
              let merges = m["tokenizer.ggml.merges"]?.array?.compactMap(\.string) else {
            throw .malformed("\(file.path): tokenizer.ggml.tokens or tokenizer.ggml.merges is missing")
        }
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        var vocab: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where vocab[token] == nil { vocab[token] = id }
        let pairs: [[String]] = merges.map { merge in
            guard let space = merge.firstIndex(of: " ") else { return [merge, ""] }
            return [String(merge[..<space]), String(merge[merge.index(after: space)...])]
        }
        // Control (3) and user-defined (4) tokens are matched whole before BPE.
        var added: [[String: Any]] = []
        for (id, type) in types.enumerated() where (type == 3 || type == 4) && id < tokens.count {
            added.append(["id": id, "content": tokens[id], "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": type == 3])
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let preTokenizer: [String: Any]
        switch pre {
        case .gpt2:
            preTokenizer = byteLevel
        case .digitsThenGPT2:
            preTokenizer = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        case .llama3, .qwen2:
            let digits = pre == .llama3 ? "\\p{N}{1,3}" : "\\p{N}"
            let pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\(digits)| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
            preTokenizer = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            ] as [Any]]
        }
        func token(_ key: String) -> String? { m[key]?.int.flatMap { $0 >= 0 && $0 < tokens.count ? tokens[$0] : nil } }
        let addBOS = m["tokenizer.ggml.add_bos_token"]?.bool ?? false
        var single: [[String: Any]] = [["Sequence": ["id": "A", "type_id": 0]]]
        var specials: [String: Any] = [:]
        if addBOS, let bos = token("tokenizer.ggml.bos_token_id"), let id = vocab[bos] {
            single.insert(["SpecialToken": ["id": bos, "type_id": 0]], at: 0)
            specials[bos] = ["id": bos, "ids": [id], "tokens": [bos]]
        }
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": pre == .qwen2 ? ["type": "NFC"] as Any : NSNull(),
            "pre_tokenizer": preTokenizer,
            "post_processor": ["type": "TemplateProcessing", "single": single, "pair": single + [["Sequence": ["id": "B", "type_id": 1]]],
                               "special_tokens": specials] as [String: Any],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": pre == .llama3,
                      "vocab": vocab, "merges": pairs] as [String: Any],
        ]
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": addBOS, "add_eos_token": false,
            "clean_up_tokenization_spaces": false,
            "model_max_length": m["\(m["general.architecture"]?.string ?? "llama").context_length"]?.int ?? 2048,
        ]
        for (field, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
            if let t = token("tokenizer.ggml." + key) { config[field] = t }
        }
        if let chatTemplate { config["chat_template"] = chatTemplate }
        do {
            let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
            return (try JSONSerialization.data(withJSONObject: tokenizer, options: options),
                    try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw .malformed("\(file.path): cannot encode tokenizer.json (\(error.localizedDescription))")
        }
    }
}
