/// Builds the syntax tree from the lexer's pieces. Unsupported statements are errors that name
/// the statement and its position.
struct JinjaParser {
    static func parse(_ source: String) throws(TemplateError) -> [JinjaNode] {
        var stream = try JinjaLexer.pieces(source)[...]
        return try parseBlock(&stream, until: [], ended: nil).0
    }

    /// Parses nodes until a statement whose keyword is in `until`; returns that keyword's tokens.
    static func parseBlock(_ pieces: inout ArraySlice<JinjaLexer.Piece>, until: Set<String>, ended: (Int, Int)?)
        throws(TemplateError) -> ([JinjaNode], [JinjaToken]?) {
        var nodes: [JinjaNode] = []
        while let piece = pieces.popFirst() {
            switch piece {
            case .text(let t): nodes.append(.text(t))
            case .output(let body, let line, let column):
                var p = ExprParser(tokens: try JinjaLexer.tokens(body, line: line, column: column), line: line, column: column)
                nodes.append(.output(try p.parseExpression()))
                try p.expectEnd()
            case .statement(let body, let line, let column):
                let tokens = try JinjaLexer.tokens(body, line: line, column: column)
                guard case .name(let keyword)? = tokens.first else {
                    throw TemplateError(message: "empty statement", line: line, column: column)
                }
                if until.contains(keyword) { return (nodes, tokens) }
                var p = ExprParser(tokens: Array(tokens.dropFirst()), line: line, column: column)
                switch keyword {
                case "if":
                    var branches: [(JinjaExpr, [JinjaNode])] = []
                    var condition = try p.parseExpression()
                    try p.expectEnd()
                    var otherwise: [JinjaNode] = []
                    while true {
                        let (body, end) = try parseBlock(&pieces, until: ["elif", "else", "endif"], ended: (line, column))
                        branches.append((condition, body))
                        guard let end, case .name(let which)? = end.first else { break }
                        if which == "elif" {
                            var q = ExprParser(tokens: Array(end.dropFirst()), line: line, column: column)
                            condition = try q.parseExpression()
                            continue
                        }
                        if which == "else" {
                            otherwise = try parseBlock(&pieces, until: ["endif"], ended: (line, column)).0
                        }
                        break
                    }
                    nodes.append(.ifChain(branches, otherwise: otherwise))
                case "for":
                    var targets = [try p.name()]
                    while p.accept(.op(",")) { targets.append(try p.name()) }
                    try p.expect(.name("in"))
                    let iterable = try p.parseOr(allowConditional: false)
                    let condition = p.accept(.name("if")) ? try p.parseExpression() : nil
                    try p.expectEnd()
                    let (body, end) = try parseBlock(&pieces, until: ["else", "endfor"], ended: (line, column))
                    var otherwise: [JinjaNode] = []
                    if case .name("else")? = end?.first { otherwise = try parseBlock(&pieces, until: ["endfor"], ended: (line, column)).0 }
                    nodes.append(.forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: otherwise))
                case "set":
                    let target = try p.name()
                    let attribute = p.accept(.op(".")) ? try p.name() : nil
                    try p.expect(.op("="))
                    let value = try p.parseExpression()
                    try p.expectEnd()
                    nodes.append(.set(target: target, attribute: attribute, value: value))
                case "macro":
                    let name = try p.name()
                    try p.expect(.op("("))
                    var parameters: [(String, JinjaExpr?)] = []
                    while !p.accept(.op(")")) {
                        let parameter = try p.name()
                        parameters.append((parameter, p.accept(.op("=")) ? try p.parseExpression() : nil))
                        _ = p.accept(.op(","))
                    }
                    let body = try parseBlock(&pieces, until: ["endmacro"], ended: (line, column)).0
                    nodes.append(.macro(name: name, parameters: parameters, body: body))
                default:
                    throw TemplateError(message: "unsupported statement '\(keyword)'", line: line, column: column)
                }
            }
        }
        if let (line, column) = ended {
            throw TemplateError(message: "block not closed (expected one of \(until.sorted().joined(separator: ", ")))", line: line, column: column)
        }
        return (nodes, nil)
    }
}

/// Expression parsing by precedence climbing.
struct ExprParser {
    var tokens: [JinjaToken]
    var position = 0
    let line: Int, column: Int

    func fail(_ message: String) -> TemplateError { TemplateError(message: message, line: line, column: column) }
    var peek: JinjaToken? { position < tokens.count ? tokens[position] : nil }
    mutating func accept(_ t: JinjaToken) -> Bool { if peek == t { position += 1; return true }; return false }
    mutating func expect(_ t: JinjaToken) throws(TemplateError) { guard accept(t) else { throw fail("expected \(t), found \(peek.map { "\($0)" } ?? "end of tag")") } }
    mutating func expectEnd() throws(TemplateError) { if let t = peek { throw fail("unexpected \(t)") } }
    mutating func name() throws(TemplateError) -> String {
        guard case .name(let n)? = peek else { throw fail("expected a name, found \(peek.map { "\($0)" } ?? "end of tag")") }
        position += 1
        return n
    }

    mutating func parseExpression() throws(TemplateError) -> JinjaExpr { try parseOr(allowConditional: true) }

    mutating func parseOr(allowConditional: Bool) throws(TemplateError) -> JinjaExpr {
        var left = try parseAnd()
        while accept(.name("or")) { left = .binary("or", left, try parseAnd()) }
        if allowConditional, accept(.name("if")) {
            let condition = try parseOr(allowConditional: false)
            let otherwise = accept(.name("else")) ? try parseOr(allowConditional: true) : nil
            return .conditional(left, condition: condition, otherwise: otherwise)
        }
        return left
    }

    mutating func parseAnd() throws(TemplateError) -> JinjaExpr {
        var left = try parseNot()
        while accept(.name("and")) { left = .binary("and", left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws(TemplateError) -> JinjaExpr {
        if accept(.name("not")) { return .unary("not", try parseNot()) }
        return try parseCompare()
    }

    mutating func parseCompare() throws(TemplateError) -> JinjaExpr {
        var left = try parseMath1()
        while true {
            if case .op(let o)? = peek, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                position += 1; left = .binary(o, left, try parseMath1())
            } else if accept(.name("in")) {
                left = .binary("in", left, try parseMath1())
            } else if peek == .name("not"), position + 1 < tokens.count, tokens[position + 1] == .name("in") {
                position += 2; left = .unary("not", .binary("in", left, try parseMath1()))
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                let test = try name()
                var args: [JinjaExpr] = []
                if accept(.op("(")) { while !accept(.op(")")) { args.append(try parseExpression()); _ = accept(.op(",")) } }
                else if case .string? = peek { args.append(try parsePrimary()) }
                left = .test(left, test, negated: negated, args)
            } else { return left }
        }
    }

    mutating func parseMath1() throws(TemplateError) -> JinjaExpr {
        var left = try parseConcat()
        while case .op(let o)? = peek, o == "+" || o == "-" { position += 1; left = .binary(o, left, try parseConcat()) }
        return left
    }

    mutating func parseConcat() throws(TemplateError) -> JinjaExpr {
        var left = try parseMath2()
        while accept(.op("~")) { left = .binary("~", left, try parseMath2()) }
        return left
    }

    mutating func parseMath2() throws(TemplateError) -> JinjaExpr {
        var left = try parsePow()
        while case .op(let o)? = peek, ["*", "/", "//", "%"].contains(o) { position += 1; left = .binary(o, left, try parsePow()) }
        return left
    }

    mutating func parsePow() throws(TemplateError) -> JinjaExpr {
        let left = try parseUnary()
        if accept(.op("**")) { return .binary("**", left, try parseUnary()) }
        return left
    }

    mutating func parseUnary() throws(TemplateError) -> JinjaExpr {
        if accept(.op("-")) { return .unary("-", try parseUnary()) }
        if accept(.op("+")) { return try parseUnary() }
        return try parsePostfix(try parsePrimary())
    }

    mutating func parsePostfix(_ base: JinjaExpr) throws(TemplateError) -> JinjaExpr {
        var e = base
        while true {
            if accept(.op(".")) {
                e = .attribute(e, try name())
            } else if accept(.op("[")) {
                var start: JinjaExpr? = nil
                if peek != .op(":") { start = try parseExpression() }
                if accept(.op(":")) {
                    var stop: JinjaExpr? = nil, step: JinjaExpr? = nil
                    if peek != .op("]") && peek != .op(":") { stop = try parseExpression() }
                    if accept(.op(":")), peek != .op("]") { step = try parseExpression() }
                    try expect(.op("]"))
                    e = .slice(e, start, stop, step)
                } else {
                    try expect(.op("]"))
                    guard let start else { throw fail("empty subscript") }
                    e = .index(e, start)
                }
            } else if accept(.op("(")) {
                let (args, kwargs) = try parseArguments()
                e = .call(e, args, kwargs)
            } else if accept(.op("|")) {
                let filter = try name()
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if accept(.op("(")) { (args, kwargs) = try parseArguments() }
                e = .filter(e, filter, args, kwargs)
            } else { return e }
        }
    }

    mutating func parseArguments() throws(TemplateError) -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
        while !accept(.op(")")) {
            if case .name(let n)? = peek, position + 1 < tokens.count, tokens[position + 1] == .op("=") {
                position += 2
                kwargs.append((n, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
            if !accept(.op(",")) { try expect(.op(")")); break }
        }
        return (args, kwargs)
    }

    mutating func parsePrimary() throws(TemplateError) -> JinjaExpr {
        guard let t = peek else { throw fail("expected an expression") }
        position += 1
        switch t {
        case .string(var s):
            while case .string(let more)? = peek { s += more; position += 1 }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            let e = try parseExpression()
            if accept(.op(",")) {  // a tuple: treated as a list
                var items = [e]
                while !accept(.op(")")) { items.append(try parseExpression()); _ = accept(.op(",")) }
                return .list(items)
            }
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [JinjaExpr] = []
            while !accept(.op("]")) { items.append(try parseExpression()); if !accept(.op(",")) { try expect(.op("]")); break } }
            return .list(items)
        case .op("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !accept(.op("}")) {
                let key = try parseExpression()
                try expect(.op(":"))
                pairs.append((key, try parseExpression()))
                if !accept(.op(",")) { try expect(.op("}")); break }
            }
            return .dictionary(pairs)
        default:
            throw fail("unexpected \(t)")
        }
    }
}
