/// GPT-2's reversible map between bytes and printable Unicode characters: byte-level BPE
/// vocabularies store tokens as strings of these characters (a space is "Ġ", a newline "Ċ").
enum ByteLevel {
    /// byte → character.
    static let characters: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var map = [Int](repeating: 0, count: 256)
        for b in printable { map[b] = b }
        var next = 256
        for b in 0..<256 where !printable.contains(b) {
            map[b] = next
            next += 1
            printable.append(b)
        }
        return map.map { Character(Unicode.Scalar(UInt32($0))!) }
    }()

    /// character → byte (for decoding).
    static let bytes: [Character: UInt8] = {
        var inverse: [Character: UInt8] = [:]
        for (b, c) in characters.enumerated() { inverse[c] = UInt8(b) }
        return inverse
    }()

    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = ""
        for b in bytes { s.append(characters[Int(b)]) }
        return s
    }
}
