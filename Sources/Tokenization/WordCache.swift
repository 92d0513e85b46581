/// Pre-tokens (words) seen before → their ids: text repeats words constantly, so most pieces
/// are a lookup. Bounded three ways so hostile text cannot grow it without limit: pieces longer
/// than `maxKeyBytes` are never stored (a long unbroken string is encoded once and forgotten),
/// and the whole table is dropped once it holds `maxEntries` entries or about `maxBytes` bytes.
/// Held in a `Mutex` by the tokenizer (one table shared by every thread that encodes).
struct WordCache<Key: Hashable> {
    /// Longest piece (in UTF-8 bytes) worth remembering; Hugging Face `tokenizers` stops at 256
    /// characters too.
    static var defaultMaxKeyBytes: Int { 256 }
    static var defaultMaxEntries: Int { 1 << 16 }
    static var defaultMaxBytes: Int { 16 << 20 }
    /// Bytes an entry costs beyond its key and ids (dictionary slot, array headers), roughly.
    static var entryOverhead: Int { 64 }

    let maxKeyBytes: Int, maxEntries: Int, maxBytes: Int
    private(set) var entries: [Key: [Int32]] = [:]
    /// The estimated size of `entries` in bytes.
    private(set) var bytes = 0

    init(maxKeyBytes: Int = defaultMaxKeyBytes, maxEntries: Int = defaultMaxEntries, maxBytes: Int = defaultMaxBytes) {
        self.maxKeyBytes = maxKeyBytes
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
    }

    /// Whether a piece of `keyBytes` bytes may be stored at all (callers skip the lookup too).
    func admits(keyBytes: Int) -> Bool { keyBytes <= maxKeyBytes }

    func lookup(_ key: Key) -> [Int32]? { entries[key] }

    /// Stores `ids` for `key` (a piece of `keyBytes` bytes) unless the piece is too long; drops
    /// everything first when the table is full (simple, and a full table is rare: real text
    /// has far fewer distinct words than the limit).
    mutating func insert(_ key: Key, keyBytes: Int, ids: [Int32]) {
        guard admits(keyBytes: keyBytes), entries[key] == nil else { return }
        let cost = keyBytes + 4 * ids.count + Self.entryOverhead
        if entries.count >= maxEntries || bytes + cost > maxBytes {
            entries.removeAll(keepingCapacity: true)
            bytes = 0
        }
        entries[key] = ids
        bytes += cost
    }
}
