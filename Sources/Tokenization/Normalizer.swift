import Foundation

/// Text normalization a tokenizer applies before splitting (Hugging Face `normalizer`).
/// Qwen2 ships NFC: "e\u{301}" and "é" must give the same ids.
public enum Normalizer: String, Sendable {
    case none
    case nfc

    func apply(_ text: Substring) -> Substring {
        switch self {
        case .none: return text
        case .nfc:
            // Every scalar below U+0300 is already NFC (no combining marks, no singletons there),
            // so the common case costs one scan and no copy.
            guard text.unicodeScalars.contains(where: { $0.value >= 0x300 }) else { return text }
            return Substring(String(text).precomposedStringWithCanonicalMapping)
        }
    }
}
