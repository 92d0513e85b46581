import Foundation

/// Everything `lorikeet serve` is told: the models, where to listen, and the limits that bound
/// every request in size, time and tokens.
public struct ServeOptions: Sendable {
    /// The base: a `.gguf` file, a Hugging Face folder or `smollm2`.
    public var model: String
    /// The base's name in requests and `/v1/models` (default: its file or folder name without extension).
    public var modelName: String?
    /// Adapters loaded at start, by the name requests choose them with.
    public var adapters: [(name: String, path: String)]
    /// Loopback unless told otherwise: a model server is not for the open network by default.
    public var host: String
    /// 0 picks a free port (tests); the chosen one is reported once listening.
    public var port: Int
    /// When set, every `/v1/` request needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    public var limits: EngineLimits
    /// The largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// Seconds a connection may stay silent; a client that has begun a request head and not
    /// finished it by then (slow-loris) gets a 408 error body and is closed.
    public var idleTimeout: Int
    /// Seconds SIGTERM lets running streams finish before they are cut.
    public var gracePeriod: Int

    public init(model: String, modelName: String? = nil, adapters: [(name: String, path: String)] = [], host: String = "127.0.0.1",
                port: Int = 8080, apiKey: String? = nil, limits: EngineLimits = EngineLimits(), maxBodyBytes: Int = 4 << 20,
                idleTimeout: Int = 30, gracePeriod: Int = 30) {
        self.model = model
        self.modelName = modelName
        self.adapters = adapters
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
        self.gracePeriod = gracePeriod
    }

    /// `NAME=PATH` as `--adapter` takes it (a bare path is named after its file or folder).
    public static func parseAdapter(_ argument: String) -> (name: String, path: String) {
        if let eq = argument.firstIndex(of: "="), eq != argument.startIndex {
            return (String(argument[..<eq]), String(argument[argument.index(after: eq)...]))
        }
        let file = (argument as NSString).lastPathComponent
        return ((file as NSString).deletingPathExtension, argument)
    }
}

/// Compares a presented key with the expected one in time that does not depend on where they
/// differ (nor, beyond the expected key's length, on how long the presented one is).
func constantTimeEquals(_ presented: String, _ expected: String) -> Bool {
    let a = Array(presented.utf8), b = Array(expected.utf8)
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<b.count {
        let x = i < a.count ? a[i] : 0
        difference |= x ^ b[i]
    }
    return difference == 0
}
