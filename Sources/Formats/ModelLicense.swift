import Foundation

/// A model's license as Lorikeet understands it: the identifier the model states (GGUF
/// `general.license`, a model card's `license:`), the license it names, and what kind of terms
/// those are, in one line that `inspect`, `train`, `merge` and `export` all print.
///
/// Open weights are not all open source: Gemma's terms and the Llama community licenses bind
/// every use (and every fine-tune) to a use policy, others forbid commercial use. A user about
/// to train on a base, or to share what they made from it, should see that before they start.
public struct ModelLicense: Sendable, Equatable {
    /// What the terms allow, from most to least free.
    public enum Kind: String, Sendable, CaseIterable {
        /// Use, modify and redistribute for any purpose, keeping the notice.
        case permissive
        /// As permissive, but credit (or a share-alike licence) is required.
        case attribution
        /// Usable commercially, but a use policy binds every use and derivative.
        case useRestrictions = "use restrictions"
        /// No commercial use.
        case nonCommercial = "non-commercial"
        /// Not stated, or not in Lorikeet's table.
        case unknown
    }

    /// The identifier as the model states it ("unknown" when it states none).
    public let identifier: String
    /// The license's full name ("Gemma Terms of Use").
    public let name: String
    public let kind: Kind
    /// One sentence on what the terms mean for a fine-tune.
    public let summary: String

    /// Whether anyone may use and redistribute a derived model with attribution only.
    public var isPermissive: Bool { kind == .permissive || kind == .attribution }

    /// The line every command prints: `gemma — Gemma Terms of Use: use restrictions (not an
    /// open-source license). …`.
    public var line: String {
        let kindText: String
        switch kind {
        case .permissive: kindText = "permissive"
        case .attribution: kindText = "attribution required"
        case .useRestrictions: kindText = "use restrictions (not an open-source license)"
        case .nonCommercial: kindText = "non-commercial (not an open-source license)"
        case .unknown: kindText = "unknown terms"
        }
        let head = name == identifier ? identifier : "\(identifier) — \(name)"
        return "\(head): \(kindText). \(summary)"
    }

    /// The entry for a stated identifier (case and spacing ignored). `name` is a card's
    /// `license_name` (GGUF `general.license.name`), which identifies the license when the
    /// identifier is the catch-all "other".
    public static func identify(_ stated: String?, name: String? = nil) -> ModelLicense {
        func clean(_ s: String?) -> String? {
            guard let t = s?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty, t.lowercased() != "unknown" else { return nil }
            return t
        }
        let (given, named) = (clean(stated), clean(name))
        let other = given == nil || given?.lowercased() == "other"
        let identifier = other ? named ?? given : given
        for candidate in (other ? [named, given] : [given, named]).compactMap({ $0?.lowercased() }) {
            if let entry = table.first(where: { $0.ids.contains(candidate) }) {
                return ModelLicense(identifier: identifier ?? candidate, name: entry.name, kind: entry.kind, summary: entry.summary)
            }
        }
        guard let identifier else {
            return ModelLicense(identifier: "unknown", name: "unknown", kind: .unknown,
                                summary: "The model states no license: check its card before you fine-tune or share it.")
        }
        return ModelLicense(identifier: identifier, name: identifier, kind: .unknown,
                            summary: "Not in Lorikeet's table of licenses: read the license before you fine-tune or share the model.")
    }

    typealias Entry = (ids: [String], name: String, kind: Kind, summary: String)

    /// Known licenses of open-weight models, by the identifiers model cards and GGUF files use.
    static let table: [Entry] = [
        (["apache-2.0", "apache 2.0", "apache-2"], "Apache License 2.0", .permissive,
         "Use, modify and redistribute for any purpose; keep the license and notices."),
        (["mit"], "MIT License", .permissive, "Use, modify and redistribute for any purpose; keep the copyright notice."),
        (["bsd-3-clause", "bsd-2-clause", "bsd"], "BSD License", .permissive, "Use, modify and redistribute for any purpose; keep the copyright notice."),
        (["openrail", "openrail++", "bigscience-openrail-m", "creativeml-openrail-m", "bigcode-openrail-m"], "Open RAIL license", .useRestrictions,
         "Free to use and share, but its use restrictions bind every use and derivative model."),
        (["cc-by-4.0", "cc-by-3.0"], "Creative Commons Attribution", .attribution, "Use and share for any purpose, crediting the authors."),
        (["cc-by-sa-4.0", "cc-by-sa-3.0"], "Creative Commons Attribution-ShareAlike", .attribution,
         "Use and share for any purpose, crediting the authors; derivatives carry the same license."),
        (["gemma"], "Gemma Terms of Use", .useRestrictions,
         "Google's Prohibited Use Policy binds every use, fine-tune and redistribution, which must pass the terms on."),
        (["llama2", "llama-2"], "Llama 2 Community License", .useRestrictions,
         "Meta's Acceptable Use Policy binds every use; services over 700M monthly users need Meta's permission."),
        (["llama3", "llama3.1", "llama3.2", "llama3.3", "llama-3", "llama-3.1", "llama-3.2", "llama-3.3"], "Llama 3.x Community License", .useRestrictions,
         "Meta's Acceptable Use Policy binds every use; derivatives must say \"Built with Llama\"; over 700M monthly users need Meta's permission."),
        (["llama4", "llama-4"], "Llama 4 Community License", .useRestrictions,
         "Meta's Acceptable Use Policy binds every use; derivatives must say \"Built with Llama\"; over 700M monthly users need Meta's permission."),
        (["qwen", "tongyi-qianwen", "tongyi qianwen"], "Qwen (Tongyi Qianwen) License", .useRestrictions,
         "Commercial use allowed with attribution; services over 100M monthly users need Alibaba Cloud's permission."),
        (["qwen-research", "qwen research"], "Qwen Research License", .nonCommercial,
         "Research and evaluation only; commercial use needs Alibaba Cloud's permission."),
        (["cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nc-3.0"], "Creative Commons NonCommercial", .nonCommercial,
         "No commercial use of the model or its derivatives; credit the authors."),
        (["mistral-research", "mrl"], "Mistral Research License", .nonCommercial, "Research use only; commercial use needs Mistral AI's license."),
    ]
}
