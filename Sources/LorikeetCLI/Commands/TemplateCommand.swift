import ArgumentParser
import Foundation
import Formats
import Architectures
import Tokenization

/// A conversation rendered with the model's own chat template: exactly what the model sees.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render a conversation with a model's chat template.")

    @Option(help: "A .gguf file or 'smollm2'.") var model = "smollm2"
    @Option(help: "A JSON file: a list of {\"role\", \"content\"} messages (or an object with \"messages\" and \"tools\").")
    var messages: String
    @Flag(help: "End with the prompt for the assistant's next turn.") var generationPrompt = false

    func run() throws {
        let file: GGUFFile
        do {
            guard case .gguf(let path) = try ModelLocation.resolve(model) else {
                throw CLIError("\(model): reading a Hugging Face folder's template is not supported yet; use a GGUF file")
            }
            file = try GGUFFile(path: path)
        } catch let error as ModelError { throw CLIError(error.description) } catch let error as FormatError { throw CLIError(error.description) }
        guard let source = file.metadata["tokenizer.chat_template"]?.string else {
            throw CLIError("\(file.path) has no chat template (tokenizer.chat_template)")
        }
        guard let data = FileManager.default.contents(atPath: messages) else { throw CLIError("\(messages): cannot read the file") }
        do {
            let document = try JSONReader.parse(String(decoding: data, as: UTF8.self))
            var conversation: [JinjaValue] = []
            var variables: [String: JinjaValue] = [:]
            switch document {
            case .array(let list): conversation = list
            case .object(_, let fields):
                guard case .array(let list)? = fields["messages"] else { throw CLIError("\(messages): expected a list of messages or {\"messages\": […]}") }
                conversation = list
                if let tools = fields["tools"] { variables["tools"] = tools }
            default: throw CLIError("\(messages): expected a list of messages")
            }
            do { variables.merge(try makeTokenizer(gguf: file).templateVariables) { given, _ in given } }
            catch { throw CLIError(error.description) }
            let rendered = try ChatTemplate(source: source).render(messages: conversation, addGenerationPrompt: generationPrompt, variables: variables)
            FileHandle.standardOutput.write(Data(rendered.utf8))
        } catch let error as TemplateError {
            throw CLIError(error.line > 0 && error.message.hasPrefix("JSON") ? "\(messages): line \(error.line), column \(error.column): \(error.message)" : error.description)
        }
    }
}
