import Architectures
import Formats
import Foundation
import Tokenization

/// A model's tokenizer and chat template without its weights: for tokenizing, rendering
/// templates and previewing data, where loading the decoder would be wasted work.
public struct ModelText {
    /// The resolved path (a `.gguf` file or a folder).
    public let path: String
    /// The model's tokenizer.
    public let tokenizer: any Tokenizer
    /// Its chat template, when it has one.
    public let chatTemplate: ChatTemplate?

    /// Reads them from a `.gguf` file's metadata, a Hugging Face folder's `tokenizer.json` and
    /// template files, or the embedded default (`smollm2`).
    public init(loading argument: String) throws(LorikeetError) {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw .model(error.description) }
        switch location {
        case .gguf(let path):
            self.path = path
            let file: GGUFFile
            do { file = try GGUFFile(path: path) } catch { throw .model(error.description) }
            tokenizer = try lorikeet { try makeTokenizer(gguf: file) }
            if let source = file.chatTemplateSource?.source {
                do { chatTemplate = try ChatTemplate(source: source) } catch { throw .model("\(path): tokenizer.chat_template: \(error.description)") }
            } else {
                chatTemplate = nil
            }
        case .huggingFaceFolder(let path):
            self.path = path
            let folder = HuggingFaceFolderFiles(path: path)
            tokenizer = try folder.tokenizer()
            chatTemplate = try folder.chatTemplate()
        }
    }

    /// Renders a conversation given as JSON — a list of messages, or `{"messages": […], "tools":
    /// […]}` — through the chat template, optionally ending with the assistant's prompt.
    public func render(conversationJSON text: String, source: String, addGenerationPrompt: Bool) throws(LorikeetError) -> String {
        guard let chatTemplate else { throw .model("\(path) has no chat template") }
        let document: JinjaValue
        do { document = try JSONReader.parse(text) } catch {
            throw .invalidRequest(error.line > 0 ? "\(source): line \(error.line), column \(error.column): \(error.message)" : "\(source): \(error.description)")
        }
        var conversation: [JinjaValue] = []
        var variables = tokenizer.templateVariables
        switch document {
        case .array(let list): conversation = list
        case .object(_, let fields):
            guard case .array(let list)? = fields["messages"] else {
                throw .invalidRequest("\(source): expected a list of messages or {\"messages\": […]}")
            }
            conversation = list
            if let tools = fields["tools"] { variables["tools"] = tools }
        default: throw .invalidRequest("\(source): expected a list of messages")
        }
        do { return try chatTemplate.render(messages: conversation, addGenerationPrompt: addGenerationPrompt, variables: variables) } catch {
            throw .model("\(path): \(error.description)")
        }
    }
}
