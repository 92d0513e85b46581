import Foundation
import Hummingbird

/// A request the server refuses, answered as OpenAI answers one: a 4xx status and
/// `{"error": {"message", "type", "param", "code"}}`, so clients written for OpenAI show the message.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The HTTP status (4xx for the client's mistakes, 503 while shutting down).
    public var status: Int
    /// What is wrong and what to do, for a person.
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `not_found_error`, …
    public var type: String
    /// The request field at fault, when one is.
    public var param: String?
    /// A short machine-readable code (`model_not_found`, `context_length_exceeded`, …).
    public var code: String?
    /// Seconds after which to try again (429 and 503 only).
    public var retryAfter: Int?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil,
                retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status) \(type): \(message)" }

    /// A malformed or invalid request (400).
    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 400, message: message, param: param, code: code)
    }

    /// A request naming no model or adapter the server holds (404).
    static func unknownModel(_ name: String, known: [String]) -> APIError {
        APIError(status: 404, message: "The model '\(name)' does not exist; this server holds: \(known.joined(separator: ", "))",
                 type: "not_found_error", param: "model", code: "model_not_found")
    }

    /// The JSON body OpenAI's clients parse.
    var body: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }

    /// The HTTP response carrying this error.
    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSON.encode(body))))
    }
}

/// JSON in and out through Foundation, keeping booleans apart from numbers.
enum JSON {
    /// `value` as compact UTF-8 JSON (keys sorted, so bodies are stable).
    static func encode(_ value: Any) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return Array(#"{"error":{"message":"the server could not encode its answer","type":"server_error","param":null,"code":null}}"#.utf8)
        }
        return [UInt8](data)
    }

    /// A JSON booleans arrives from JSONSerialization as an NSNumber of objCType "c".
    static func isBool(_ value: Any) -> Bool {
        guard let n = value as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }
}
