import Foundation
import Lorikeet

/// The JSON shapes of OpenAI's completion answers, as dictionaries for `JSON.encode`.
enum OpenAIResponses {
    /// OpenAI's `finish_reason`: `stop` (end of turn or a stop string) or `length` (out of tokens
    /// or context).
    static func finishReason(_ finish: Generator.Finish) -> String {
        switch finish {
        case .stopToken, .caller: return "stop"
        case .maxTokens, .contextFull: return "length"
        }
    }

    static func usage(_ summary: GenerationSummary) -> [String: Any] {
        ["prompt_tokens": summary.promptTokens, "completion_tokens": summary.generatedTokens,
         "total_tokens": summary.promptTokens + summary.generatedTokens]
    }

    /// A whole answer (non-streaming).
    static func completion(id: String, created: Int, model: String, chat: Bool, summary: GenerationSummary) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": finishReason(summary.finish), "logprobs": NSNull()]
        if chat {
            choice["message"] = ["role": "assistant", "content": summary.text]
        } else {
            choice["text"] = summary.text
        }
        return ["id": id, "object": chat ? "chat.completion" : "text_completion", "created": created, "model": model,
                "choices": [choice], "usage": usage(summary), "system_fingerprint": NSNull()]
    }

    /// One streamed chunk: a piece of text (`text`), the chat's opening role delta (`role`), or
    /// the closing chunk (`finish`).
    static func chunk(id: String, created: Int, model: String, chat: Bool, text: String? = nil, role: Bool = false,
                      finish: String? = nil) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": finish as Any? ?? NSNull(), "logprobs": NSNull()]
        if chat {
            var delta: [String: Any] = [:]
            if role { delta["role"] = "assistant"; delta["content"] = "" }
            if let text { delta["content"] = text }
            choice["delta"] = delta
        } else {
            choice["text"] = text ?? ""
        }
        return ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created, "model": model,
                "choices": [choice], "system_fingerprint": NSNull()]
    }

    /// The last chunk of a stream that asked for `stream_options.include_usage`.
    static func usageChunk(id: String, created: Int, model: String, chat: Bool, summary: GenerationSummary) -> [String: Any] {
        ["id": id, "object": chat ? "chat.completion.chunk" : "text_completion", "created": created, "model": model,
         "choices": [Any](), "usage": usage(summary)]
    }

    /// An entry of `GET /v1/models`.
    static func model(_ entry: ModelEntry, base: String) -> [String: Any] {
        var object: [String: Any] = ["id": entry.name, "object": "model", "created": entry.created, "owned_by": "lorikeet", "root": base]
        if let path = entry.adapterPath {
            object["parent"] = base
            object["adapter"] = path
        } else {
            object["parent"] = NSNull()
        }
        return object
    }

    /// A server-sent event carrying `object`.
    static func event(_ object: [String: Any]) -> [UInt8] { Array("data: ".utf8) + JSON.encode(object) + Array("\n\n".utf8) }

    static let done = Array("data: [DONE]\n\n".utf8)
}
