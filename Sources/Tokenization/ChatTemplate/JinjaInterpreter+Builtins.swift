import Foundation

/// Filters, tests, methods and global functions: those chat templates use.
extension JinjaInterpreter {
    func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue]) throws(TemplateError) -> Bool {
        switch name {
        case "defined": if case .undefined = v { return false }; return true
        case "undefined": if case .undefined = v { return true }; return false
        case "none": if case .none = v { return true }; return false
        case "string": return v.isStringLike
        case "number": if case .int = v { return true }; if case .double = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "mapping": if case .object = v { return true }; return false
        case "sequence", "iterable":
            switch v { case .array, .string, .object: return true; default: return false }
        case "true": return v == .bool(true)
        case "false": return v == .bool(false)
        case "equalto", "eq", "sameas": return args.first.map { Self.equal(v, $0) } ?? false
        case "odd": if case .int(let i) = v { return i % 2 != 0 }; return false
        case "even": if case .int(let i) = v { return i % 2 == 0 }; return false
        default: throw fail("unsupported test '\(name)'")
        }
    }

    func filter(_ name: String, _ v: JinjaValue, _ args: [JinjaValue], _ kwargs: [String: JinjaValue]) throws(TemplateError) -> JinjaValue {
        switch name {
        case "trim": return .string(v.text.trimmingCharacters(in: .whitespacesAndNewlines))
        case "upper": return .string(v.text.uppercased())
        case "lower": return .string(v.text.lowercased())
        case "capitalize": let t = v.text; return .string(t.prefix(1).uppercased() + t.dropFirst().lowercased())
        case "title": return .string(v.text.capitalized)
        case "string": return .string(v.text)
        case "int": return .int(Int(v.text) ?? Int(Self.number(v) ?? 0))
        case "length", "count":
            switch v { case .array(let a): return .int(a.count); case .string(let s): return .int(s.count)
            case .object(let k, _): return .int(k.count); default: return .int(0) }
        case "first": if case .array(let a) = v { return a.first ?? .undefined }; return .undefined
        case "last": if case .array(let a) = v { return a.last ?? .undefined }; return .undefined
        case "default", "d":
            let fallback = args.first ?? .string("")
            if case .undefined = v { return fallback }
            if (args.count > 1 && args[1].isTruthy) || kwargs["boolean"]?.isTruthy == true { return v.isTruthy ? v : fallback }
            return v
        case "join":
            let separator = args.first?.text ?? ""
            return .string(try iterate(v).map(\.text).joined(separator: separator))
        case "replace":
            guard args.count >= 2 else { throw fail("replace needs two arguments") }
            return .string(v.text.replacingOccurrences(of: args[0].text, with: args[1].text))
        case "list": return .array(try iterate(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .array(try iterate(v).reversed())
        case "items":
            guard case .object(let keys, let values) = v else { return .array([]) }
            return .array(keys.map { .array([.string($0), values[$0] ?? .none]) })
        case "tojson":
            let indent: Int? = { if case .int(let i)? = kwargs["indent"] ?? args.first { return i }; return nil }()
            return .string(v.json(indent: indent))
        case "selectattr", "rejectattr":
            guard let attribute = args.first?.text else { throw fail("\(name) needs an attribute name") }
            let items = try iterate(v)
            var kept: [JinjaValue] = []
            for item in items {
                let a = member(item, attribute)
                let passes = args.count >= 2 ? try test(args[1].text, a, Array(args.dropFirst(2))) : a.isTruthy
                if passes == (name == "selectattr") { kept.append(item) }
            }
            return .array(kept)
        case "map":
            if let attribute = kwargs["attribute"]?.text { return .array(try iterate(v).map { member($0, attribute) }) }
            guard let filterName = args.first?.text else { throw fail("map needs a filter or attribute") }
            var out: [JinjaValue] = []
            for item in try iterate(v) { out.append(try filter(filterName, item, Array(args.dropFirst()), [:])) }
            return .array(out)
        default: throw fail("unsupported filter '\(name)'")
        }
    }

    mutating func call(_ callee: JinjaExpr, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws(TemplateError) -> JinjaValue {
        // Methods on values.
        if case .attribute(let baseExpr, let method) = callee {
            let base = try eval(baseExpr)
            switch (base, method) {
            case (.string(let s), "strip"): return .string(Self.strip(s, args.first?.text, leading: true, trailing: true))
            case (.string(let s), "lstrip"): return .string(Self.strip(s, args.first?.text, leading: true, trailing: false))
            case (.string(let s), "rstrip"): return .string(Self.strip(s, args.first?.text, leading: false, trailing: true))
            case (.string(let s), "upper"): return .string(s.uppercased())
            case (.string(let s), "lower"): return .string(s.lowercased())
            case (.string(let s), "startswith"): return .bool(s.hasPrefix(args.first?.text ?? ""))
            case (.string(let s), "endswith"): return .bool(s.hasSuffix(args.first?.text ?? ""))
            case (.string(let s), "replace"):
                guard args.count >= 2 else { throw fail("replace needs two arguments") }
                return .string(s.replacingOccurrences(of: args[0].text, with: args[1].text))
            case (.string(let s), "split"):
                if let separator = args.first, case .string(let sep) = separator, !sep.isEmpty {
                    return .array(s.components(separatedBy: sep).map { .string($0) })
                }
                return .array(s.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
            case (.object(let keys, let values), "items"): return .array(keys.map { .array([.string($0), values[$0] ?? .none]) })
            case (.object(let keys, _), "keys"): return .array(keys.map { .string($0) })
            case (.object(let keys, let values), "values"): return .array(keys.map { values[$0] ?? .none })
            case (.object(_, let values), "get"): return values[args.first?.text ?? ""] ?? (args.count > 1 ? args[1] : .none)
            default: break
            }
        }
        guard case .name(let function) = callee else { throw fail("this expression cannot be called") }
        switch function {
        case "raise_exception": throw fail("template raised: \(args.first?.text ?? "")")
        case "namespace": return .namespace(JinjaNamespace(Dictionary(kwargs, uniquingKeysWith: { $1 })))
        case "range":
            let ints = args.compactMap { v -> Int? in if case .int(let i) = v { return i }; return nil }
            let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : ints.count == 2 ? (ints[0], ints[1], 1)
                : ints.count == 3 ? (ints[0], ints[1], ints[2]) : (0, 0, 1)
            guard step != 0 else { throw fail("range step must not be zero") }
            let count = max(0, (stop - start + (step > 0 ? step - 1 : step + 1)) / step)
            guard count <= limits.maxIterations else { throw fail("range of \(count) items exceeds the loop limit") }
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        case "strftime_now":
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = Self.dateFormat(from: args.first?.text ?? "%Y-%m-%d")
            return .string(formatter.string(from: Date()))
        default:
            guard let macro = macros[function] else { throw fail("unknown function '\(function)'") }
            depth += 1
            defer { depth -= 1 }
            guard depth <= limits.maxDepth else { throw fail("call depth limit of \(limits.maxDepth) exceeded") }
            var scope: [String: JinjaValue] = [:]
            for (i, (parameter, defaultExpr)) in macro.parameters.enumerated() {
                if i < args.count { scope[parameter] = args[i] }
                else if let kw = kwargs.first(where: { $0.0 == parameter }) { scope[parameter] = kw.1 }
                else if let defaultExpr { scope[parameter] = try eval(defaultExpr) }
                else { scope[parameter] = .undefined }
            }
            let saved = output
            output = ""
            scopes.append(scope)
            defer { scopes.removeLast() }
            try run(macro.body)
            let produced = output
            output = saved
            return .string(produced)
        }
    }

    static func strip(_ s: String, _ characters: String?, leading: Bool, trailing: Bool) -> String {
        let set = characters.map { CharacterSet(charactersIn: $0) } ?? .whitespacesAndNewlines
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, set.contains(f) { scalars.removeFirst() } }
        if trailing { while let l = scalars.last, set.contains(l) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// strftime → DateFormatter for the directives templates use (%d %b %Y, %Y-%m-%d, …).
    static func dateFormat(from strftime: String) -> String {
        let map: [Character: String] = ["d": "dd", "m": "MM", "Y": "yyyy", "y": "yy", "b": "MMM", "B": "MMMM", "H": "HH", "M": "mm", "S": "ss", "A": "EEEE", "a": "EEE"]
        var out = "", escape = false
        for c in strftime {
            if escape { out += map[c] ?? String(c); escape = false } else if c == "%" { escape = true } else { out += c.isLetter ? "'\(c)'" : String(c) }
        }
        return out
    }
}
