import Tokenization

/// The JSONL record layouts Lorikeet reads (one example per line), as mlx-lm and the Hugging
/// Face trainers name them.
public enum DatasetFormat: String, Sendable, CaseIterable, Codable {
    /// `{"text": …}`: plain text, every token trained, EOS appended.
    case text
    /// `{"prompt": …, "completion": …}`: a user turn and the assistant's reply.
    case completion
    /// `{"messages": [{"role", "content"}, …], "tools": …}`: a whole conversation.
    case messages
    /// `{"instruction", "input", "output"}` (Stanford Alpaca): instruction and input make the
    /// user turn, output the assistant's.
    case alpaca

    /// The format a record's keys imply, or nil when they fit none.
    public static func detect(keys: Set<String>, fields: FieldNames) -> DatasetFormat? {
        if keys.contains(fields.messages) { return .messages }
        if keys.contains(fields.prompt), keys.contains(fields.completion) { return .completion }
        if keys.contains(fields.instruction), keys.contains(fields.output) { return .alpaca }
        if keys.contains(fields.text) { return .text }
        return nil
    }
}

/// Record keys, remappable in the recipe (`data.fields.prompt: question`).
public struct FieldNames: Sendable, Equatable, Codable {
    public var text = "text"
    public var prompt = "prompt", completion = "completion"
    public var messages = "messages", tools = "tools"
    public var instruction = "instruction", input = "input", output = "output"
    public init() {}
}

/// One example before tokenization: raw text, or a conversation for the chat template.
public enum Conversation: Sendable, Equatable {
    case text(String)
    case chat(messages: [JinjaValue], tools: JinjaValue?)

    /// Reads `record` (one parsed JSONL line) in `format`; errors name the field at fault.
    static func from(_ record: JinjaValue, format: DatasetFormat, fields: FieldNames) throws(RecordError) -> Conversation {
        guard case .object(_, let values) = record else { throw RecordError(.unknownLayout, "expected a JSON object") }
        func string(_ key: String, required: Bool = true) throws(RecordError) -> String? {
            switch values[key] {
            case .string(let s): return s
            case nil, .none?, .undefined?:
                if required { throw RecordError(.missingField, "missing field '\(key)' (format \(format.rawValue))") }
                return nil
            default: throw RecordError(.wrongType, "field '\(key)' must be a string")
            }
        }
        /// The assistant's reply: an empty one teaches nothing but the end-of-turn token.
        func reply(_ key: String) throws(RecordError) -> String {
            let s = try string(key) ?? ""
            guard !s.allSatisfy(\.isWhitespace) else { throw RecordError(.emptyAssistantTurn, "field '\(key)' (the assistant's reply) is empty") }
            return s
        }
        func message(_ role: String, _ content: String) -> JinjaValue {
            .dictionary([("role", .string(role)), ("content", .string(content))])
        }
        switch format {
        case .text:
            return .text(try string(fields.text) ?? "")
        case .completion:
            return .chat(messages: [message("user", try string(fields.prompt) ?? ""),
                                    message("assistant", try reply(fields.completion))], tools: nil)
        case .alpaca:
            var user = try string(fields.instruction) ?? ""
            if let input = try string(fields.input, required: false), !input.isEmpty { user += "\n\n" + input }
            return .chat(messages: [message("user", user), message("assistant", try reply(fields.output))], tools: nil)
        case .messages:
            let messages: [JinjaValue]
            switch values[fields.messages] {
            case .array(let list)?: messages = list
            case nil, .none?, .undefined?: throw RecordError(.missingField, "missing field '\(fields.messages)' (format messages)")
            default: throw RecordError(.wrongType, "field '\(fields.messages)' must be an array of messages")
            }
            guard !messages.isEmpty else { throw RecordError(.noAssistantTurn, "'\(fields.messages)' is empty") }
            var normalized = messages
            for (i, m) in messages.enumerated() {
                guard case .object(_, let entry) = m else { throw RecordError(.wrongType, "message \(i) is not an object") }
                let role: String
                switch entry["role"] {
                case .string(let r)?: role = r
                case nil, .none?, .undefined?: throw RecordError(.missingField, "message \(i) has no 'role'")
                default: throw RecordError(.wrongType, "message \(i): 'role' must be a string")
                }
                guard ["system", "user", "assistant", "tool"].contains(role) else {
                    throw RecordError(.unknownRole, "message \(i) has role '\(role)' (expected system, user, assistant or tool)")
                }
                switch entry["content"] {
                case .string(let content)?:
                    if role == "assistant", content.allSatisfy(\.isWhitespace), entry["tool_calls"] == nil {
                        throw RecordError(.emptyAssistantTurn, "message \(i) (assistant) has empty content")
                    }
                case .none?, nil: if entry["tool_calls"] == nil { throw RecordError(.missingField, "message \(i) has no 'content'") }
                default: throw RecordError(.wrongType, "message \(i): 'content' must be a string")
                }
                normalized[i] = try Self.parsingToolArguments(m, message: i)
            }
            let tools = values[fields.tools].flatMap { v -> JinjaValue? in if case .none = v { return nil }; return v }
            return .chat(messages: normalized, tools: tools)
        }
    }
}

extension Conversation {
    /// `message` with each tool call's `function.arguments` as a JSON object. The OpenAI API
    /// sends arguments as a JSON string, while templates (Qwen2.5's, Llama 3.1's) print them with
    /// `tojson` and transformers documents them as an object: a string would be trained as a
    /// quoted, escaped string the model never emits. Object arguments are left as they are.
    static func parsingToolArguments(_ message: JinjaValue, message index: Int) throws(RecordError) -> JinjaValue {
        guard case .object(let keys, var entry) = message, let calls = entry["tool_calls"] else { return message }
        switch calls {
        case .none, .undefined: return message
        case .array(var list):
            for (j, call) in list.enumerated() {
                guard case .object(let callKeys, var callEntry) = call else {
                    throw RecordError(.wrongType, "message \(index): tool call \(j) is not an object")
                }
                // OpenAI nests name and arguments under `function`; some datasets put them on the call.
                let target: JinjaValue, nested: Bool
                if case .object? = callEntry["function"], let function = callEntry["function"] { target = function; nested = true } else { target = call; nested = false }
                guard case .object(let fKeys, var function) = target else { continue }
                guard case .string(let text)? = function["arguments"] else { continue }
                let parsed: JinjaValue
                do { parsed = try JSONReader.parse(text) } catch {
                    throw RecordError(.wrongType, "message \(index): tool call \(j)'s arguments are a string but not JSON (\(error.description))")
                }
                guard case .object = parsed else {
                    throw RecordError(.wrongType, "message \(index): tool call \(j)'s arguments must be a JSON object")
                }
                function["arguments"] = parsed
                if nested { callEntry["function"] = .object(fKeys, function); list[j] = .object(callKeys, callEntry) } else { list[j] = .object(fKeys, function) }
            }
            entry["tool_calls"] = .array(list)
            return .object(keys, entry)
        default: throw RecordError(.wrongType, "message \(index): 'tool_calls' must be an array")
        }
    }
}

/// A problem with one record, before the file and line are known.
public struct RecordError: Error, CustomStringConvertible {
    public let kind: InvalidRecord
    public let reason: String
    init(_ kind: InvalidRecord, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }
    public var description: String { reason }
}
