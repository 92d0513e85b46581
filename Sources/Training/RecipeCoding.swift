/// The flat `section.key → value` form of any `Codable` settings value, both ways.
///
/// The recipe's sections are plain `Codable` structs whose `CodingKeys` are the YAML keys.
/// Encoding `Recipe()` through `FlatEncoder` gives every key with its default, in declaration
/// order: the key list, the defaults and the "did you mean" suggestions all come from there,
/// so a new setting is one property, written once. `FlatDecoder` reads a complete flat map
/// back into the typed value and names the key at fault when a value has the wrong type.
enum FlatCoding {
    /// Every key of `value` with its value, in encoding order.
    static func flatten<T: Encodable>(_ value: T) throws(RecipeError) -> [(key: String, value: RecipeValue)] {
        let storage = FlatStorage()
        do { try value.encode(to: FlatEncoder(storage: storage, codingPath: [])) } catch let e as RecipeError { throw e } catch {
            throw .unreadable("cannot encode the recipe (\(error))")
        }
        return storage.order.map { ($0, storage.values[$0] ?? .null) }
    }

    /// `T` read from `values`, which holds every key `T` encodes.
    static func unflatten<T: Decodable>(_ type: T.Type, from values: [String: RecipeValue]) throws(RecipeError) -> T {
        do { return try T(from: FlatDecoder(values: values, codingPath: [])) } catch let e as RecipeError { throw e } catch let e as DecodingError {
            switch e {
            case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
                let key = path(context.codingPath)
                throw .invalidValue(key: key, value: "\(values[key] ?? .null)", expected: context.debugDescription)
            @unknown default: throw .unreadable("\(e)")
            }
        } catch { throw .unreadable("\(error)") }
    }

    static func path(_ codingPath: [any CodingKey]) -> String { codingPath.map(\.stringValue).joined(separator: ".") }
}

/// A value a recipe reads from a name: the enums of `quantization.base`, `data.train_on`, …
/// Decoding one reports the valid names when the text is none of them.
protocol RecipeChoice: CaseIterable, RawRepresentable where RawValue == String {}

private final class FlatStorage {
    var values: [String: RecipeValue] = [:]
    var order: [String] = []

    func set(_ key: String, _ value: RecipeValue) {
        if values.updateValue(value, forKey: key) == nil { order.append(key) }
    }
}

// MARK: - Encoding

private struct FlatEncoder: Encoder {
    let storage: FlatStorage
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(FlatKeyedEncoder<Key>(storage: storage, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer { FlatListEncoder(storage: storage, codingPath: codingPath) }
    func singleValueContainer() -> any SingleValueEncodingContainer { FlatValueEncoder(storage: storage, codingPath: codingPath) }
}

private struct FlatKeyedEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let storage: FlatStorage
    let codingPath: [any CodingKey]

    func path(_ key: Key) -> String { FlatCoding.path(codingPath + [key]) }

    mutating func encodeNil(forKey key: Key) throws { storage.set(path(key), .null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { storage.set(path(key), .bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { storage.set(path(key), .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { storage.set(path(key), .double(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { storage.set(path(key), .int(value)) }
    mutating func encode(_ value: Float, forKey key: Key) throws { storage.set(path(key), .double(Double(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try encodeUnsigned(UInt64(value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { storage.set(path(key), .int(Int(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try encodeUnsigned(value, key) }
    private mutating func encodeUnsigned(_ value: UInt64, _ key: Key) throws {
        guard let i = Int(exactly: value) else { throw RecipeError.unreadable("\(path(key)): \(value) is too large for a recipe") }
        storage.set(path(key), .int(i))
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try value.encode(to: FlatEncoder(storage: storage, codingPath: codingPath + [key]))
    }

    // An absent optional is a key whose value is null (a recipe lists every key).
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws { try encodeOptional(value, forKey: key) }

    private mutating func encodeOptional<T: Encodable>(_ value: T?, forKey key: Key) throws {
        guard let value else { return try encodeNil(forKey: key) }
        try encode(value, forKey: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FlatKeyedEncoder<NestedKey>(storage: storage, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        FlatListEncoder(storage: storage, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { FlatEncoder(storage: storage, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { FlatEncoder(storage: storage, codingPath: codingPath + [key]) }
}

/// A list of plain values (module names, layer indices), kept as their texts.
private struct FlatListEncoder: UnkeyedEncodingContainer {
    let storage: FlatStorage
    let codingPath: [any CodingKey]
    var count = 0

    init(storage: FlatStorage, codingPath: [any CodingKey]) {
        self.storage = storage
        self.codingPath = codingPath
        storage.set(FlatCoding.path(codingPath), .list([]))
    }

    private mutating func append(_ text: String) {
        let key = FlatCoding.path(codingPath)
        guard case .list(let items) = storage.values[key] ?? .list([]) else { return }
        storage.set(key, .list(items + [text]))
        count += 1
    }

    mutating func encodeNil() throws { throw RecipeError.unreadable("\(FlatCoding.path(codingPath)): a list cannot hold null") }
    mutating func encode(_ value: String) throws { append(value) }
    mutating func encode(_ value: Int) throws { append(String(value)) }
    mutating func encode(_ value: Bool) throws { append(value ? "true" : "false") }
    mutating func encode(_ value: Double) throws { append(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        // Collections encode their elements through this generic entry point.
        switch value {
        case let s as String: append(s)
        case let i as Int: append(String(i))
        case let b as Bool: append(b ? "true" : "false")
        case let d as Double: append(String(d))
        default: throw RecipeError.unreadable("\(FlatCoding.path(codingPath)): a recipe list holds plain values, not \(T.self)")
        }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(FlatKeyedEncoder<NestedKey>(storage: storage, codingPath: codingPath))
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { self }
    mutating func superEncoder() -> any Encoder { FlatEncoder(storage: storage, codingPath: codingPath) }
}

private struct FlatValueEncoder: SingleValueEncodingContainer {
    let storage: FlatStorage
    let codingPath: [any CodingKey]

    var key: String { FlatCoding.path(codingPath) }
    mutating func encodeNil() throws { storage.set(key, .null) }
    mutating func encode(_ value: Bool) throws { storage.set(key, .bool(value)) }
    mutating func encode(_ value: String) throws { storage.set(key, .string(value)) }
    mutating func encode(_ value: Double) throws { storage.set(key, .double(value)) }
    mutating func encode(_ value: Int) throws { storage.set(key, .int(value)) }
    mutating func encode(_ value: Float) throws { storage.set(key, .double(Double(value))) }
    mutating func encode(_ value: Int8) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: Int16) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: Int32) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: Int64) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: UInt) throws { try encode(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: UInt16) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: UInt32) throws { storage.set(key, .int(Int(value))) }
    mutating func encode(_ value: UInt64) throws {
        guard let i = Int(exactly: value) else { throw RecipeError.unreadable("\(key): \(value) is too large for a recipe") }
        storage.set(key, .int(i))
    }
    mutating func encode<T: Encodable>(_ value: T) throws { try value.encode(to: FlatEncoder(storage: storage, codingPath: codingPath)) }
}

// MARK: - Decoding

private struct FlatDecoder: Decoder {
    let values: [String: RecipeValue]
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(FlatKeyedDecoder<Key>(values: values, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try FlatListDecoder(values: values, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { FlatValueDecoder(values: values, codingPath: codingPath) }
}

/// Scalar conversions shared by the keyed and single-value containers. A string setting
/// accepts any scalar (`output.name: 7` is the name "7"); numbers accept integers.
private struct FlatScalars {
    let values: [String: RecipeValue]

    func value(_ key: String) throws -> RecipeValue {
        guard let v = values[key] else { throw RecipeError.unreadable("recipe key '\(key)' is missing") }
        return v
    }

    func mismatch(_ key: String, _ expected: String) throws -> Never {
        throw RecipeError.invalidValue(key: key, value: "\(values[key] ?? .null)", expected: expected)
    }

    func string(_ key: String) throws -> String {
        switch try value(key) {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        default: try mismatch(key, "a string")
        }
    }

    func int(_ key: String) throws -> Int {
        guard case .int(let i) = try value(key) else { try mismatch(key, "an integer") }
        return i
    }

    func double(_ key: String) throws -> Double {
        switch try value(key) {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: try mismatch(key, "a number")
        }
    }

    func bool(_ key: String) throws -> Bool {
        guard case .bool(let b) = try value(key) else { try mismatch(key, "true or false") }
        return b
    }

    /// An integer that fits `I`.
    func integer<I: FixedWidthInteger>(_ key: String) throws -> I {
        guard let i = I(exactly: try int(key)) else { try mismatch(key, "an integer in \(I.min)...\(I.max)") }
        return i
    }

    func unsigned(_ key: String) throws -> UInt64 {
        let i = try int(key)
        guard i >= 0 else { try mismatch(key, "an integer ≥ 0") }
        return UInt64(i)
    }

    /// A named choice (an enum of `RecipeChoice`), or nil when `T` is not one.
    func choice<T>(_ type: T.Type, _ key: String) throws -> T? {
        guard let choices = type as? any RecipeChoice.Type else { return nil }
        func parse<C: RecipeChoice>(_ c: C.Type) throws -> T? {
            let text = try string(key)
            guard let value = C(rawValue: text) else {
                try mismatch(key, "one of " + C.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return value as? T
        }
        return try parse(choices)
    }

    func decode<T: Decodable>(_ type: T.Type, _ key: String, codingPath: [any CodingKey]) throws -> T {
        if type == String.self, let v = try string(key) as? T { return v }
        if type == Int.self, let v = try int(key) as? T { return v }
        if type == Double.self, let v = try double(key) as? T { return v }
        if type == Bool.self, let v = try bool(key) as? T { return v }
        if type == UInt64.self, let v = try unsigned(key) as? T { return v }
        if let choice = try choice(type, key) { return choice }
        return try T(from: FlatDecoder(values: values, codingPath: codingPath))
    }
}

private struct FlatKeyedDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let values: [String: RecipeValue]
    let codingPath: [any CodingKey]
    var scalars: FlatScalars { FlatScalars(values: values) }

    func path(_ key: Key) -> String { FlatCoding.path(codingPath + [key]) }

    var allKeys: [Key] {
        let prefix = FlatCoding.path(codingPath)
        let names = values.keys.compactMap { k -> String? in
            guard prefix.isEmpty || k.hasPrefix(prefix + ".") else { return nil }
            return k.dropFirst(prefix.isEmpty ? 0 : prefix.count + 1).split(separator: ".").first.map(String.init)
        }
        return Set(names).compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        let p = path(key)
        return values[p] != nil || values.keys.contains { $0.hasPrefix(p + ".") }
    }

    func decodeNil(forKey key: Key) throws -> Bool { values[path(key)] == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try scalars.bool(path(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try scalars.string(path(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try scalars.double(path(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try scalars.int(path(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try scalars.unsigned(path(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try scalars.double(path(key))) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try scalars.integer(path(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try scalars.integer(path(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try scalars.integer(path(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try scalars.integer(path(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try scalars.integer(path(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try scalars.integer(path(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try scalars.integer(path(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try scalars.integer(path(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try scalars.decode(type, path(key), codingPath: codingPath + [key])
    }

    // null reads as an absent optional.
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeOptional(type, forKey: key) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeOptional(type, forKey: key) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeOptional(type, forKey: key) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeOptional(type, forKey: key) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try decodeOptional(type, forKey: key) }

    private func decodeOptional<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decode(type, forKey: key)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        KeyedDecodingContainer(FlatKeyedDecoder<NestedKey>(values: values, codingPath: codingPath + [key]))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try FlatListDecoder(values: values, codingPath: codingPath + [key])
    }

    func superDecoder() throws -> any Decoder { FlatDecoder(values: values, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { FlatDecoder(values: values, codingPath: codingPath + [key]) }
}

/// A list's items as texts; a single scalar where a list is expected is a one-item list
/// (`lora.layers: 3`).
private struct FlatListDecoder: UnkeyedDecodingContainer {
    let codingPath: [any CodingKey]
    let items: [String]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }
    var key: String { FlatCoding.path(codingPath) }

    init(values: [String: RecipeValue], codingPath: [any CodingKey]) throws {
        self.codingPath = codingPath
        switch values[FlatCoding.path(codingPath)] ?? .null {
        case .list(let items): self.items = items
        case .string(let s): items = [s]
        case .int(let i): items = [String(i)]
        case let other: throw RecipeError.invalidValue(key: FlatCoding.path(codingPath), value: "\(other)", expected: "a list")
        }
    }

    mutating func next() throws -> String {
        guard !isAtEnd else { throw RecipeError.invalidValue(key: key, value: "\(items)", expected: "more items") }
        defer { currentIndex += 1 }
        return items[currentIndex]
    }

    mutating func decodeNil() throws -> Bool { false }
    mutating func decode(_ type: String.Type) throws -> String { try next() }
    mutating func decode(_ type: Int.Type) throws -> Int {
        let text = try next()
        guard let i = Int(text) else { throw RecipeError.invalidValue(key: key, value: text, expected: "a list of integers") }
        return i
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if type == String.self, let v = try decode(String.self) as? T { return v }
        if type == Int.self, let v = try decode(Int.self) as? T { return v }
        throw RecipeError.invalidValue(key: key, value: "\(items)", expected: "a list of plain values")
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw RecipeError.invalidValue(key: key, value: "\(items)", expected: "a list of plain values")
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw RecipeError.invalidValue(key: key, value: "\(items)", expected: "a list of plain values")
    }
    mutating func superDecoder() throws -> any Decoder {
        throw RecipeError.invalidValue(key: key, value: "\(items)", expected: "a list of plain values")
    }
}

private struct FlatValueDecoder: SingleValueDecodingContainer {
    let values: [String: RecipeValue]
    let codingPath: [any CodingKey]
    var key: String { FlatCoding.path(codingPath) }
    var scalars: FlatScalars { FlatScalars(values: values) }

    func decodeNil() -> Bool { values[key] == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try scalars.bool(key) }
    func decode(_ type: String.Type) throws -> String {
        if case .list = values[key] { try scalars.mismatch(key, "a single value") }
        return try scalars.string(key)
    }
    func decode(_ type: Double.Type) throws -> Double { try scalars.double(key) }
    func decode(_ type: Int.Type) throws -> Int { try scalars.int(key) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try scalars.unsigned(key) }
    func decode(_ type: Float.Type) throws -> Float { Float(try scalars.double(key)) }
    func decode(_ type: Int8.Type) throws -> Int8 { try scalars.integer(key) }
    func decode(_ type: Int16.Type) throws -> Int16 { try scalars.integer(key) }
    func decode(_ type: Int32.Type) throws -> Int32 { try scalars.integer(key) }
    func decode(_ type: Int64.Type) throws -> Int64 { try scalars.integer(key) }
    func decode(_ type: UInt.Type) throws -> UInt { try scalars.integer(key) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try scalars.integer(key) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try scalars.integer(key) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try scalars.integer(key) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try scalars.decode(type, key, codingPath: codingPath) }
}
