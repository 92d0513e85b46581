import Formats
import Foundation

/// Encoded dataset files on disk, so a second run over the same data skips tokenization; an
/// entry is a `TokenizedFile`, which the dataset then reads in place.
///
/// The key is SHA-256 of everything that decides the encoding: the file's bytes, the
/// tokenizer's fingerprint, the chat template's text, train_on, the format and field names and
/// skip_invalid. Row settings (max_seq_len, over_long, packing) are not in it: entries hold
/// examples before they are fitted to rows, and fitting is cheap, so changing them still hits.
/// A file that fails any check (magic, key, sizes, ids within the vocabulary, CRC-32) is
/// treated as absent and rewritten.
public struct TokenizationCache: Sendable {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    /// Bumped whenever encoding or the file layout changes, so old entries stop matching.
    static let version = "lorikeet-tokenized-v3"  // v3: tool-call arguments given as JSON strings are read as objects

    public enum Lookup: Sendable {
        case hit(TokenizedFile)
        case miss
        /// An entry exists but cannot be used (why).
        case damaged(String)
    }

    public static func key(fileBytes: Data, encoder: ExampleEncoder, format: DatasetFormat?, fields: FieldNames, skipInvalid: Bool) -> [UInt8] {
        var file = SHA256()
        file.update(fileBytes)
        return key(fileDigest: file.finalize(), encoder: encoder, format: format, fields: fields, skipInvalid: skipInvalid)
    }

    /// SHA-256 of a file's bytes, read in chunks.
    public static func digest(ofFile path: String) throws(DataError) -> [UInt8] {
        do { return try SHA256.digest(ofFile: path) } catch { throw .io(path: path, reason: error.description) }
    }

    public static func key(fileDigest: [UInt8], encoder: ExampleEncoder, format: DatasetFormat?, fields: FieldNames, skipInvalid: Bool) -> [UInt8] {
        let settings = [version, encoder.template?.source ?? "<no template>", encoder.trainOn.rawValue, format?.rawValue ?? "auto",
                        fields.text, fields.prompt, fields.completion, fields.messages, fields.tools, fields.instruction, fields.input, fields.output,
                        skipInvalid ? "skip-invalid" : "strict"]
        var key = SHA256()
        key.update(fileDigest)
        key.update(encoder.tokenizer.fingerprint)
        for s in settings { key.update(Array(s.utf8)); key.update([0]) }
        return key.finalize()
    }

    public func file(for key: [UInt8]) -> String { directory + "/" + SHA256.hex(key) + ".lktok" }

    /// The entry for `key`, mapped and checked, its skipped-record samples naming `path` (the
    /// same bytes may sit under another name).
    public func lookup(_ key: [UInt8], path: String, vocabularySize: Int) -> Lookup {
        let entry = file(for: key)
        guard FileManager.default.fileExists(atPath: entry) else { return .miss }
        do { return .hit(try TokenizedFile(file: entry, key: key, path: path, vocabularySize: vocabularySize)) } catch {
            return .damaged(error.reason)
        }
    }

    /// A writer for the entry of `key`: its file appears under `file(for: key)` only when
    /// committed whole.
    func writer(for key: [UInt8]) throws(DataError) -> TokenizedFileWriter {
        try TokenizedFileWriter(directory: directory, key: key)
    }
}
