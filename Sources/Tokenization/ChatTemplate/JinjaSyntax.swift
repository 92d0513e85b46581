/// The template's syntax tree.
indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpr)
    case forLoop(targets: [String], iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode])
    case ifChain([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case set(target: String, attribute: String?, value: JinjaExpr)
    case macro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode])
}

indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case attribute(JinjaExpr, String)
    case index(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, negated: Bool, [JinjaExpr])
    case unary(String, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
    case list([JinjaExpr])
    case dictionary([(JinjaExpr, JinjaExpr)])
}

/// A syntax or runtime error, with the template position (1-based line and column).
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public let line: Int, column: Int
    public var description: String { line > 0 ? "chat template line \(line), column \(column): \(message)" : "chat template: \(message)" }
}
