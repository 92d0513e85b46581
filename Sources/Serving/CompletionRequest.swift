import Foundation
import Lorikeet

/// A `/v1/chat/completions` or `/v1/completions` body, checked field by field: every field has
/// its JSON type checked, values their range, and a field the server does not know is refused
/// (naming it) rather than silently ignored, so a client never believes a setting took effect.
struct CompletionRequest: Sendable {
    enum Prompt: Sendable, Equatable {
        /// Chat messages, rendered with the model's chat template.
        case chat([ChatMessage])
        /// Plain text, encoded as it is (special-token text not parsed), as `generate --raw` does.
        case text(String)
    }

    var model: String
    var prompt: Prompt
    /// Nil: as many as the context leaves (up to the server's cap).
    var maxTokens: Int?
    var sampling: SamplingOptions
    var stop: [String]
    var stream: Bool
    /// `stream_options.include_usage`: a last chunk with the token counts.
    var streamUsage: Bool

    static let chatFields: Set<String> = [
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
        "frequency_penalty", "presence_penalty", "seed", "stop", "stream", "stream_options", "n", "user", "logit_bias", "logprobs",
        "top_logprobs",
    ]
    static let completionFields: Set<String> = [
        "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
        "presence_penalty", "seed", "stop", "stream", "stream_options", "n", "user", "logit_bias", "logprobs", "echo", "best_of", "suffix",
    ]

    /// Parses a body; `chat` chooses which endpoint's fields apply.
    init(body: [UInt8], chat: Bool) throws(APIError) {
        let object = try Self.object(body)
        let fields = FieldReader(object: object)
        let allowed = chat ? Self.chatFields : Self.completionFields
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalid("Unrecognized request argument supplied: \(unknown)", param: unknown, code: "unknown_field")
        }
        guard let model = try fields.string("model") else { throw .invalid("you must provide a model parameter", param: "model") }
        self.model = model
        if chat {
            prompt = .chat(try Self.messages(object["messages"]))
        } else {
            guard let raw = object["prompt"] else { throw .invalid("you must provide a prompt", param: "prompt") }
            if let text = raw as? String {
                prompt = .text(text)
            } else if let list = raw as? [Any], list.count == 1, let text = list[0] as? String {
                prompt = .text(text)
            } else {
                throw .invalid("'prompt' must be a string (or a list of one string; token-id prompts are not supported)", param: "prompt")
            }
            let echo = try fields.bool("echo")
            guard echo != true else { throw .invalid("'echo' is not supported", param: "echo") }
            guard try fields.string("suffix") == nil else { throw .invalid("'suffix' is not supported", param: "suffix") }
            if let bestOf = try fields.int("best_of"), bestOf != 1 { throw .invalid("'best_of' must be 1", param: "best_of") }
        }
        let newName = try fields.int("max_completion_tokens"), oldName = try fields.int("max_tokens")
        let maxTokens = newName ?? oldName
        if let maxTokens, maxTokens < 1 {
            throw .invalid("'max_tokens' must be at least 1 (got \(maxTokens))", param: "max_tokens")
        }
        self.maxTokens = maxTokens
        // OpenAI's defaults (temperature 1, nothing truncated); the extensions top_k, min_p and
        // repetition_penalty as vLLM and llama.cpp's server name them.
        var sampling = SamplingOptions(temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0)
        if let t = try fields.number("temperature") {
            guard t >= 0, t <= 2 else { throw .invalid("'temperature' must be between 0 and 2 (got \(t))", param: "temperature") }
            sampling.temperature = Float(t)
        }
        if let p = try fields.number("top_p") {
            guard p > 0, p <= 1 else { throw .invalid("'top_p' must be in (0, 1] (got \(p))", param: "top_p") }
            sampling.topP = Float(p)
        }
        if let k = try fields.int("top_k") {
            guard k >= 0 else { throw .invalid("'top_k' must be 0 (off) or positive (got \(k))", param: "top_k") }
            sampling.topK = k
        }
        if let m = try fields.number("min_p") {
            guard m >= 0, m < 1 else { throw .invalid("'min_p' must be in [0, 1) (got \(m))", param: "min_p") }
            sampling.minP = Float(m)
        }
        if let r = try fields.number("repetition_penalty") {
            guard r > 0, r <= 10 else { throw .invalid("'repetition_penalty' must be in (0, 10] (got \(r))", param: "repetition_penalty") }
            sampling.repetitionPenalty = Float(r)
        }
        for name in ["frequency_penalty", "presence_penalty"] {
            if let value = try fields.number(name), value != 0 {
                throw .invalid("'\(name)' is not supported (only 0); use 'repetition_penalty' (1: off), the penalty `lorikeet generate` has",
                               param: name)
            }
        }
        if let seed = try fields.int("seed") {
            guard seed >= 0 else { throw .invalid("'seed' must not be negative (got \(seed))", param: "seed") }
            sampling.seed = UInt64(seed)
        }
        if let problem = sampling.problem { throw .invalid(problem) }
        self.sampling = sampling
        switch object["stop"] {
        case nil, is NSNull: stop = []
        case let s as String: stop = [s]
        case let list as [Any]:
            guard list.count <= 4, let strings = list as? [String] else {
                throw .invalid("'stop' must be a string or a list of at most 4 strings", param: "stop")
            }
            stop = strings
        default: throw .invalid("'stop' must be a string or a list of at most 4 strings", param: "stop")
        }
        guard stop.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
            throw .invalid("each stop string must be 1 to 256 bytes", param: "stop")
        }
        stream = try fields.bool("stream") ?? false
        streamUsage = false
        if let options = object["stream_options"], !(options is NSNull) {
            guard let options = options as? [String: Any] else { throw .invalid("'stream_options' must be an object", param: "stream_options") }
            guard stream else { throw .invalid("'stream_options' is only allowed with stream: true", param: "stream_options") }
            if let unknown = options.keys.sorted().first(where: { $0 != "include_usage" }) {
                throw .invalid("Unrecognized stream option: \(unknown)", param: "stream_options.\(unknown)")
            }
            let include = try FieldReader(object: options).bool("include_usage")
            streamUsage = include ?? false
        }
        if let n = try fields.int("n"), n != 1 { throw .invalid("'n' must be 1: one choice per request", param: "n") }
        _ = try fields.string("user")
        if let bias = object["logit_bias"], !(bias is NSNull) {
            guard let map = bias as? [String: Any], map.isEmpty else { throw .invalid("'logit_bias' is not supported", param: "logit_bias") }
        }
        for name in ["logprobs", "top_logprobs"] {
            guard let value = object[name], !(value is NSNull) else { continue }
            if JSON.isBool(value), (value as? Bool) == false { continue }
            if name == "top_logprobs", (value as? NSNumber)?.intValue == 0, !JSON.isBool(value) { continue }
            if name == "logprobs", !chat, (value as? NSNumber)?.intValue == 0, !JSON.isBool(value) { continue }
            throw .invalid("'\(name)' is not supported", param: name)
        }
    }

    /// The body as a JSON object, or a 400 saying where it breaks.
    static func object(_ body: [UInt8]) throws(APIError) -> [String: Any] {
        guard !body.isEmpty else { throw .invalid("the request body is empty; send a JSON object") }
        guard nestingDepth(body) <= maxNesting else {
            throw .invalid("the request body nests arrays and objects deeper than \(maxNesting) levels", code: "invalid_json")
        }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(body), options: []) } catch {
            throw .invalid("the request body is not valid JSON (\(Self.reason(error)))", code: "invalid_json")
        }
        guard let object = parsed as? [String: Any] else { throw .invalid("the request body must be a JSON object", code: "invalid_json") }
        return object
    }

    static let maxNesting = 64

    /// How deep brackets nest outside strings: checked before parsing, so a hostile body of a
    /// million `[` never reaches a recursive parser.
    static func nestingDepth(_ body: [UInt8]) -> Int {
        var depth = 0, deepest = 0, inString = false, escaped = false
        for byte in body {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    /// OpenAI's messages: role and content (a string, or a list of `{"type": "text", "text": …}` parts).
    static func messages(_ raw: Any?) throws(APIError) -> [ChatMessage] {
        guard let raw else { throw .invalid("you must provide 'messages'", param: "messages") }
        guard let list = raw as? [Any], !list.isEmpty else { throw .invalid("'messages' must be a non-empty list", param: "messages") }
        guard list.count <= 1024 else { throw .invalid("'messages' has \(list.count) entries; at most 1024", param: "messages") }
        var messages: [ChatMessage] = []
        for (i, item) in list.enumerated() {
            let param = "messages[\(i)]"
            guard let message = item as? [String: Any] else { throw .invalid("\(param) must be an object", param: param) }
            if let unknown = message.keys.sorted().first(where: { !["role", "content", "name"].contains($0) }) {
                throw .invalid("\(param): unrecognized field '\(unknown)'", param: "\(param).\(unknown)")
            }
            guard let role = message["role"] as? String else { throw .invalid("\(param).role must be a string", param: "\(param).role") }
            guard ["system", "developer", "user", "assistant", "tool"].contains(role) else {
                throw .invalid("\(param).role '\(role)' is not one of system, developer, user, assistant, tool", param: "\(param).role")
            }
            let content: String
            switch message["content"] {
            case let s as String: content = s
            case let parts as [Any]:
                var text = ""
                for (j, part) in parts.enumerated() {
                    guard let part = part as? [String: Any], part["type"] as? String == "text", let piece = part["text"] as? String else {
                        throw .invalid("\(param).content[\(j)] must be {\"type\": \"text\", \"text\": …} (only text is supported)",
                                       param: "\(param).content")
                    }
                    text += piece
                }
                content = text
            default: throw .invalid("\(param).content must be a string or a list of text parts", param: "\(param).content")
            }
            messages.append(ChatMessage(role: role == "developer" ? "system" : role, content: content))
        }
        return messages
    }
}

/// Typed reads of an object's optional fields: absent or null is nil, a wrong type a 400.
struct FieldReader {
    let object: [String: Any]

    func present(_ name: String) -> Any? {
        guard let value = object[name], !(value is NSNull) else { return nil }
        return value
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let value = present(name) else { return nil }
        guard let s = value as? String else { throw .invalid("'\(name)' must be a string", param: name, code: "invalid_type") }
        return s
    }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let value = present(name) else { return nil }
        guard JSON.isBool(value), let b = value as? Bool else { throw .invalid("'\(name)' must be true or false", param: name, code: "invalid_type") }
        return b
    }

    func number(_ name: String) throws(APIError) -> Double? {
        guard let value = present(name) else { return nil }
        guard !JSON.isBool(value), let n = value as? NSNumber, n.doubleValue.isFinite else {
            throw .invalid("'\(name)' must be a number", param: name, code: "invalid_type")
        }
        return n.doubleValue
    }

    func int(_ name: String) throws(APIError) -> Int? {
        guard let d = try number(name) else { return nil }
        guard d == d.rounded(), abs(d) < 1e15 else { throw .invalid("'\(name)' must be an integer", param: name, code: "invalid_type") }
        return Int(d)
    }
}
