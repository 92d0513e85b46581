import Formats
import Tokenization

extension GGUFFile {
    /// The chat template to use: the file's own, else Lorikeet's built-in one for its
    /// architecture (base GGUFs such as Gemma 3 270M carry none); nil when there is neither.
    var chatTemplateSource: (source: String, isBuiltIn: Bool)? {
        if let own = metadata["tokenizer.chat_template"]?.string { return (own, false) }
        return ChatTemplate.builtInSource(architecture: metadata["general.architecture"]?.string).map { ($0, true) }
    }

    /// The license the file states (`general.license`, named by `general.license.name` when
    /// that says "other"), looked up in Lorikeet's table; its `unknown` entry when unstated.
    var license: ModelLicense {
        ModelLicense.identify(metadata["general.license"]?.string, name: metadata["general.license.name"]?.string)
    }
}
