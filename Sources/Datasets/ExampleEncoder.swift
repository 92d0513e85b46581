import Tokenization

/// Which tokens of a conversation the loss counts.
public enum TrainOn: String, Sendable, CaseIterable, Codable {
    /// Every token (plain-text data always trains on everything).
    case all
    /// Every assistant turn, end-of-turn token included.
    case assistant
    /// Only the last assistant turn.
    case last
}

/// A tokenized example: ids and, per token, whether it is a training target.
public struct TokenizedExample: Sendable, Equatable {
    public var ids: [Int32]
    /// trained[i]: the model is taught to predict ids[i] from the tokens before it.
    public var trained: [Bool]

    public init(ids: [Int32], trained: [Bool]) {
        precondition(ids.count == trained.count, "TokenizedExample: \(ids.count) ids but \(trained.count) mask entries")
        self.ids = ids
        self.trained = trained
    }

    /// Targets the loss sees: positions 1… whose token is trained.
    public var trainedTargets: Int { trained.dropFirst().lazy.filter { $0 }.count }
}

/// Turns conversations into token ids and loss masks with the model's own chat template.
///
/// Masks come from token boundaries of the rendered conversation, never from searching the
/// text: assistant turn i spans from the end of the rendering of turns 0..<i with the
/// generation prompt to where the rendering of turns 0...i stops agreeing with the whole
/// conversation's (trailing whitespace excluded), and a token is trained when it starts inside such a span. This is the
/// prefix-rendering method; a template that rewrites earlier turns once later ones exist
/// (Qwen3 drops old reasoning) fails the prefix check and is reported.
public struct ExampleEncoder: Sendable {
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate?
    public let trainOn: TrainOn

    public init(tokenizer: any Tokenizer, template: ChatTemplate?, trainOn: TrainOn) {
        self.tokenizer = tokenizer
        self.template = template
        self.trainOn = trainOn
    }

    public func encode(_ conversation: Conversation) throws(RecordError) -> TokenizedExample {
        switch conversation {
        case .text(let text):
            var ids: [Int32]
            do { ids = try tokenizer.encode(text, parseSpecial: false) } catch { throw RecordError(.unrenderable, error.description) }
            if let eos = tokenizer.eos { ids.append(eos) }
            return TokenizedExample(ids: ids, trained: [Bool](repeating: true, count: ids.count))
        case .chat(let messages, let tools):
            guard let template else { throw RecordError(.unrenderable, "the model has no chat template, so conversations cannot be rendered; use the 'text' format") }
            var variables = tokenizer.templateVariables
            if let tools { variables["tools"] = tools }
            func render(_ turns: ArraySlice<JinjaValue>, _ generationPrompt: Bool) throws(RecordError) -> [UInt8] {
                do { return Array(try template.render(messages: Array(turns), addGenerationPrompt: generationPrompt, variables: variables).utf8) } catch {
                    throw RecordError(.unrenderable, error.description)
                }
            }
            let full = try render(messages[...], false)
            var ids: [Int32]
            do { ids = try tokenizer.encode(String(decoding: full, as: UTF8.self), addBOS: false, parseSpecial: true) } catch {
                throw RecordError(.unrenderable, error.description)
            }
            guard trainOn != .all else { return TokenizedExample(ids: ids, trained: [Bool](repeating: true, count: ids.count)) }

            var assistantTurns = messages.indices.filter { Self.role(messages[$0]) == "assistant" }
            guard !assistantTurns.isEmpty else { throw RecordError(.noAssistantTurn, "no assistant turn to train on (train_on: \(trainOn.rawValue))") }
            if trainOn == .last { assistantTurns = [assistantTurns[assistantTurns.count - 1]] }
            var spans: [Range<Int>] = []
            for turn in assistantTurns {
                let before = try render(messages[..<turn], true)
                // The last turn's rendering is the whole conversation's: rendered once already.
                let through = turn == messages.count - 1 ? full : try render(messages[...turn], false)
                // Where the rendering through this turn stops agreeing with the whole: templates
                // like Phi-3.5 close every rendering with EOS, which belongs to the last turn only.
                var end = zip(through, full).prefix { $0 == $1 }.count
                guard full.starts(with: before), end > before.count else {
                    throw RecordError(.unrenderable, "the chat template does not render turn \(turn) as a prefix of the whole conversation (it rewrites earlier turns), so its tokens cannot be masked by turn; use train_on: all")
                }
                while end > before.count, [0x20, 0x0A, 0x0D, 0x09].contains(through[end - 1]) { end -= 1 }
                spans.append(before.count..<end)
            }
            var trained = [Bool](repeating: false, count: ids.count)
            // Each token's byte share of the text (SentencePiece's dummy-prefix space is no byte of it).
            let lengths = tokenizer.decodedLengths(ids)
            var offset = 0, s = 0
            for (i, length) in lengths.enumerated() {
                while s < spans.count, spans[s].upperBound <= offset { s += 1 }
                if s < spans.count, spans[s].contains(offset) { trained[i] = true }
                offset += length
            }
            guard offset == full.count else {
                throw RecordError(.unrenderable, "tokens decode to \(offset) bytes but the rendered conversation has \(full.count); the tokenizer cannot round-trip this text")
            }
            return TokenizedExample(ids: ids, trained: trained)
        }
    }

    static func role(_ message: JinjaValue) -> String? {
        guard case .object(_, let values) = message, case .string(let role)? = values["role"] else { return nil }
        return role
    }
}
