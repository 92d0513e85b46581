import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A bare HTTP/1.1 client over a POSIX socket: the tests control every byte (broken headers, slow
/// or huge bodies), which URLSession would not send. One request per connection.
struct HTTPTestClient {
    let port: Int

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        /// The `data:` payloads of a server-sent event stream.
        var events: [String] {
            text.components(separatedBy: "\n\n").compactMap { block in
                block.hasPrefix("data: ") ? String(block.dropFirst(6)) : nil
            }
        }
    }

    enum ClientError: Error { case connect(Int32), closedWithoutAnswer(String) }

    /// Opens a connection to the server on loopback.
    func connect(timeout: Double = 120) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw ClientError.connect(errno) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Writes all of `bytes`; false once the peer has closed.
    @discardableResult
    func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Reads until the server closes (or the timeout), then parses the answer.
    func receive(_ fd: Int32) throws -> Reply { try Self.parse(readToEnd(fd)) }

    /// Every byte until the server closes (or the timeout).
    func readToEnd(_ fd: Int32) -> [UInt8] {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return data
    }

    /// One request with `Connection: close`; a JSON body gets its Content-Type and Length.
    func request(_ method: String, _ path: String, json: Any? = nil, raw: [UInt8]? = nil, headers: [String: String] = [:]) throws -> Reply {
        var body: [UInt8] = raw ?? []
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let json { body = [UInt8](try JSONSerialization.data(withJSONObject: json)) }
        if json != nil || raw != nil {
            if headers["Content-Type"] == nil { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(body.count)\r\n"
        }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "\r\n"
        let fd = try connect()
        defer { close(fd) }
        send(fd, Array(head.utf8) + body)
        return try receive(fd)
    }

    static func parse(_ data: [UInt8]) throws -> Reply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = data.indices.first(where: { data.count >= $0 + 4 && Array(data[$0..<$0 + 4]) == separator }) else {
            throw ClientError.closedWithoutAnswer(String(decoding: data, as: UTF8.self))
        }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(data[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while i < data.count {
            guard let lineEnd = (i..<(data.count - 1)).first(where: { data[$0] == 13 && data[$0 + 1] == 10 }) else { break }
            let sizeText = String(decoding: data[i..<lineEnd], as: UTF8.self).split(separator: ";")[0]
            guard let size = Int(sizeText, radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            out += data[start..<min(data.count, start + size)]
            i = start + size + 2
        }
        return out
    }
}

extension HTTPTestClient {
    /// Waits until `condition` holds on /health (or the timeout). A reply's last byte reaches
    /// the client before the server has freed its sequence, so counts are awaited, not read once.
    func waitForHealth(timeout: Double = 60, _ condition: ([String: Any]) -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(try request("GET", "/health").json) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}
