/// A model's chat template, rendered as transformers' `apply_chat_template` renders it
/// (Jinja with trim_blocks and lstrip_blocks), by a small sandboxed interpreter.
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [JinjaNode]

    /// Parses the template; a syntax error names its line and column.
    public init(source: String) throws(TemplateError) {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Renders `messages` (each an object with `role` and `content`, plus whatever the template
    /// reads). `variables` adds template variables (bos_token, tools, date_string, …).
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool,
                       variables: [String: JinjaValue] = [:]) throws(TemplateError) -> String {
        var globals = variables
        globals["messages"] = .array(messages)
        globals["add_generation_prompt"] = .bool(addGenerationPrompt)
        var interpreter = JinjaInterpreter(globals: globals)
        try interpreter.run(nodes)
        return interpreter.output
    }
}

extension JinjaNode: @unchecked Sendable {}
