import Tokenization

/// One record split for generation: the conversation up to its last assistant turn (what the
/// model is asked) and that turn's text (what it should answer). `lorikeet eval --generate`
/// renders `messages` with the generation prompt and compares the reply with `reference`.
public struct PromptedExample: Sendable, Equatable {
    /// The record's 1-based line in its file.
    public var line: Int
    /// Every message before the last assistant turn.
    public var messages: [JinjaValue]
    public var tools: JinjaValue?
    /// The content of the last user message before that turn ("" when there is none), for reports.
    public var userText: String
    /// The last assistant turn's content (a prompt/completion record's completion).
    public var reference: String

    /// The prompts and references of `file`'s first `limit` records (0: all). A `text` file
    /// has no reference answer and is refused; so is a conversation without an assistant turn
    /// or whose last assistant turn has no text content (tool calls only).
    public static func examples(from file: JSONLFile, limit: Int = 0) throws(DataError) -> [PromptedExample] {
        guard file.format != .text else {
            throw .io(path: file.path, reason: "format 'text' has no reference answer to generate towards; --generate needs 'messages', 'prompt'/'completion' or alpaca records")
        }
        let records = limit > 0 ? Array(file.records.prefix(limit)) : file.records
        var result: [PromptedExample] = []
        result.reserveCapacity(records.count)
        for (line, conversation) in records {
            guard case .chat(let messages, let tools) = conversation else {
                throw .record(path: file.path, line: line, reason: "not a conversation; --generate needs a reference answer")
            }
            guard let last = messages.lastIndex(where: { Self.field("role", of: $0) == "assistant" }) else {
                throw .record(path: file.path, line: line, reason: "no assistant turn to use as the reference answer")
            }
            guard let reference = Self.field("content", of: messages[last]) else {
                throw .record(path: file.path, line: line, reason: "the last assistant turn (message \(last)) has no text content to use as the reference answer")
            }
            let before = Array(messages[..<last])
            let user = before.last { Self.field("role", of: $0) == "user" }.flatMap { Self.field("content", of: $0) } ?? ""
            result.append(PromptedExample(line: line, messages: before, tools: tools, userText: user, reference: reference))
        }
        return result
    }

    static func field(_ key: String, of message: JinjaValue) -> String? {
        guard case .object(_, let values) = message, case .string(let s)? = values[key] else { return nil }
        return s
    }
}
