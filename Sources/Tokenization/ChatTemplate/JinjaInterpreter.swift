import Foundation

/// Runs a template. Sandboxed: no I/O, and hard caps on loop iterations, call depth and output
/// size, so a hostile template cannot hang or exhaust memory.
struct JinjaInterpreter {
    struct Limits {
        var maxIterations = 100_000
        var maxDepth = 64
        var maxOutputBytes = 4 << 20
    }

    struct Macro { let parameters: [(String, JinjaExpr?)]; let body: [JinjaNode] }

    var scopes: [[String: JinjaValue]]
    var macros: [String: Macro] = [:]
    var output = ""
    var iterations = 0
    var depth = 0
    let limits: Limits

    init(globals: [String: JinjaValue], limits: Limits = Limits()) {
        scopes = [globals]
        self.limits = limits
    }

    func fail(_ message: String) -> TemplateError { TemplateError(message: message, line: 0, column: 0) }

    mutating func run(_ nodes: [JinjaNode]) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .text(let t): try emit(t)
            case .output(let e): try emit(try eval(e).text)
            case .ifChain(let branches, let otherwise):
                var done = false
                for (condition, body) in branches where try eval(condition).isTruthy {
                    try run(body); done = true; break
                }
                if !done { try run(otherwise) }
            case .forLoop(let targets, let iterableExpr, let condition, let body, let otherwise):
                var items = try iterate(try eval(iterableExpr))
                if let condition {
                    var kept: [JinjaValue] = []
                    for item in items {
                        scopes.append(bind(targets, item))
                        defer { scopes.removeLast() }
                        if try eval(condition).isTruthy { kept.append(item) }
                    }
                    items = kept
                }
                if items.isEmpty { try run(otherwise); continue }
                for (index, item) in items.enumerated() {
                    iterations += 1
                    guard iterations <= limits.maxIterations else { throw fail("loop limit of \(limits.maxIterations) iterations exceeded") }
                    var scope = bind(targets, item)
                    scope["loop"] = .dictionary([
                        ("index", .int(index + 1)), ("index0", .int(index)), ("first", .bool(index == 0)),
                        ("last", .bool(index == items.count - 1)), ("length", .int(items.count)),
                        ("revindex", .int(items.count - index)), ("revindex0", .int(items.count - index - 1)),
                        ("previtem", index > 0 ? items[index - 1] : .undefined),
                        ("nextitem", index + 1 < items.count ? items[index + 1] : .undefined),
                    ])
                    scopes.append(scope)
                    defer { scopes.removeLast() }
                    try run(body)
                }
            case .set(let target, let attribute, let valueExpr):
                let value = try eval(valueExpr)
                if let attribute {
                    guard case .namespace(let ns) = lookup(target) else { throw fail("cannot set '\(attribute)' on '\(target)', which is not a namespace") }
                    ns.values[attribute] = value
                } else {
                    scopes[scopes.count - 1][target] = value
                }
            case .macro(let name, let parameters, let body):
                macros[name] = Macro(parameters: parameters, body: body)
            }
        }
    }

    mutating func emit(_ s: String) throws(TemplateError) {
        output += s
        guard output.utf8.count <= limits.maxOutputBytes else { throw fail("output exceeds \(limits.maxOutputBytes) bytes") }
    }

    func bind(_ targets: [String], _ item: JinjaValue) -> [String: JinjaValue] {
        if targets.count == 1 { return [targets[0]: item] }
        guard case .array(let parts) = item else { return Dictionary(uniqueKeysWithValues: targets.map { ($0, JinjaValue.undefined) }) }
        var scope: [String: JinjaValue] = [:]
        for (i, t) in targets.enumerated() { scope[t] = i < parts.count ? parts[i] : .undefined }
        return scope
    }

    func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() { if let v = scope[name] { return v } }
        return .undefined
    }

    func iterate(_ v: JinjaValue) throws(TemplateError) -> [JinjaValue] {
        switch v {
        case .array(let a): return a
        case .object(let keys, _): return keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw fail("\(v.repr) is not iterable")
        }
    }

    mutating func eval(_ e: JinjaExpr) throws(TemplateError) -> JinjaValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items):
            var out: [JinjaValue] = []
            for item in items { out.append(try eval(item)) }
            return .array(out)
        case .dictionary(let pairs):
            var out: [(String, JinjaValue)] = []
            for (k, v) in pairs { out.append((try eval(k).text, try eval(v))) }
            return .dictionary(out)
        case .attribute(let base, let name):
            return member(try eval(base), name)
        case .index(let base, let key):
            let b = try eval(base), k = try eval(key)
            switch (b, k) {
            case (.array(let a), .int(let i)):
                let j = i < 0 ? a.count + i : i
                return j >= 0 && j < a.count ? a[j] : .undefined
            case (.string(let s), .int(let i)):
                let chars = Array(s), j = i < 0 ? chars.count + i : i
                return j >= 0 && j < chars.count ? .string(String(chars[j])) : .undefined
            case (_, .string(let name)): return member(b, name)
            default: return .undefined
            }
        case .slice(let base, let startExpr, let stopExpr, let stepExpr):
            let b = try eval(base)
            let start = try startExpr.map { e throws(TemplateError) in try eval(e) }, stop = try stopExpr.map { e throws(TemplateError) in try eval(e) }
            let step = try stepExpr.map { e throws(TemplateError) in try eval(e) }
            func sliced<T>(_ items: [T]) -> [T] {
                let n = items.count
                let st: Int = { if case .int(let s)? = step { return s }; return 1 }()
                guard st != 0 else { return [] }
                func resolve(_ v: JinjaValue?, _ fallback: Int) -> Int {
                    guard case .int(let i)? = v else { return fallback }
                    let j = i < 0 ? i + n : i
                    return st > 0 ? min(max(j, 0), n) : min(max(j, -1), n - 1)
                }
                var out: [T] = []
                var i = resolve(start, st > 0 ? 0 : n - 1)
                let end = resolve(stop, st > 0 ? n : -1)
                while st > 0 ? i < end : i > end { out.append(items[i]); i += st }
                return out
            }
            switch b {
            case .array(let a): return .array(sliced(a))
            case .string(let s): return .string(String(sliced(Array(s))))
            default: return .undefined
            }
        case .unary(let op, let operand):
            let v = try eval(operand)
            switch op {
            case "not": return .bool(!v.isTruthy)
            default:
                switch v { case .int(let i): return .int(-i); case .double(let d): return .double(-d); default: throw fail("cannot negate \(v.repr)") }
            }
        case .binary(let op, let l, let r):
            if op == "and" { let a = try eval(l); return a.isTruthy ? try eval(r) : a }
            if op == "or" { let a = try eval(l); return a.isTruthy ? a : try eval(r) }
            return try binary(op, try eval(l), try eval(r))
        case .conditional(let value, let condition, let otherwise):
            if try eval(condition).isTruthy { return try eval(value) }
            return try otherwise.map { e throws(TemplateError) in try eval(e) } ?? .undefined
        case .test(let operand, let name, let negated, let argExprs):
            let v = try eval(operand)
            var args: [JinjaValue] = []
            for a in argExprs { args.append(try eval(a)) }
            let result = try test(name, v, args)
            return .bool(negated ? !result : result)
        case .filter(let operand, let name, let argExprs, let kwargExprs):
            let v = try eval(operand)
            var args: [JinjaValue] = [], kwargs: [String: JinjaValue] = [:]
            for a in argExprs { args.append(try eval(a)) }
            for (k, a) in kwargExprs { kwargs[k] = try eval(a) }
            return try filter(name, v, args, kwargs)
        case .call(let callee, let argExprs, let kwargExprs):
            var args: [JinjaValue] = [], kwargs: [(String, JinjaValue)] = []
            for a in argExprs { args.append(try eval(a)) }
            for (k, a) in kwargExprs { kwargs.append((k, try eval(a))) }
            return try call(callee, args, kwargs)
        }
    }

    func member(_ v: JinjaValue, _ name: String) -> JinjaValue {
        switch v {
        case .object(_, let values): return values[name] ?? .undefined
        case .namespace(let ns): return ns.values[name] ?? .undefined
        default: return .undefined
        }
    }

    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws(TemplateError) -> JinjaValue {
        switch op {
        case "==": return .bool(Self.equal(a, b))
        case "!=": return .bool(!Self.equal(a, b))
        case "~": return .string(a.text + b.text)
        case "in":
            switch b {
            case .array(let items): return .bool(items.contains { Self.equal($0, a) })
            case .string(let s): return .bool(s.contains(a.text))
            case .object(_, let values): return .bool(values[a.text] != nil)
            default: return .bool(false)
            }
        default: break
        }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            switch op {
            case "+": return .string(x + y)
            case "<": return .bool(x < y)
            case "<=": return .bool(x <= y)
            case ">": return .bool(x > y)
            case ">=": return .bool(x >= y)
            default: break
            }
        case (.array(let x), .array(let y)) where op == "+": return .array(x + y)
        case (.string(let s), .int(let n)) where op == "*": return .string(String(repeating: s, count: max(n, 0)))
        case (.int(let x), .int(let y)):
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "//": guard y != 0 else { throw fail("division by zero") }; return .int(Int((Double(x) / Double(y)).rounded(.down)))
            case "%": guard y != 0 else { throw fail("division by zero") }; return .int(((x % y) + y) % y)
            case "/": guard y != 0 else { throw fail("division by zero") }; return .double(Double(x) / Double(y))
            case "<": return .bool(x < y)
            case "<=": return .bool(x <= y)
            case ">": return .bool(x > y)
            case ">=": return .bool(x >= y)
            default: break
            }
        default:
            if let x = Self.number(a), let y = Self.number(b) {
                switch op {
                case "+": return .double(x + y)
                case "-": return .double(x - y)
                case "*": return .double(x * y)
                case "/": guard y != 0 else { throw fail("division by zero") }; return .double(x / y)
                case "<": return .bool(x < y)
                case "<=": return .bool(x <= y)
                case ">": return .bool(x > y)
                case ">=": return .bool(x >= y)
                default: break
                }
            }
        }
        throw fail("unsupported operation \(a.repr) \(op) \(b.repr)")
    }

    static func number(_ v: JinjaValue) -> Double? {
        switch v { case .int(let i): return Double(i); case .double(let d): return d; case .bool(let b): return b ? 1 : 0; default: return nil }
    }

    static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        if let x = number(a), let y = number(b), !(a.isStringLike || b.isStringLike) { return x == y }
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none), (.undefined, .none), (.none, .undefined): return a == b
        default: return a == b
        }
    }
}

extension JinjaValue {
    var isStringLike: Bool { if case .string = self { return true }; return false }
}
