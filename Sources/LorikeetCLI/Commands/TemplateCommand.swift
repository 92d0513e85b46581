import ArgumentParser
import Foundation
import Lorikeet

/// A conversation rendered with the model's own chat template: exactly what the model sees.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render a conversation with a model's chat template.")

    @Option(help: "A .gguf file, a Hugging Face folder or a short name (smollm2, gemma3-270m, qwen2.5-coder-0.5b).") var model = "smollm2"
    @Option(help: "A JSON file: a list of {\"role\", \"content\"} messages (or an object with \"messages\" and \"tools\").")
    var messages: String
    @Flag(help: "End with the prompt for the assistant's next turn.") var generationPrompt = false

    func run() throws {
        let text = try ModelText(loading: model)
        guard let data = FileManager.default.contents(atPath: messages) else { throw CLIError("\(messages): cannot read the file") }
        let rendered = try text.render(conversationJSON: String(decoding: data, as: UTF8.self), source: messages,
                                       addGenerationPrompt: generationPrompt)
        FileHandle.standardOutput.write(Data(rendered.utf8))
    }
}
