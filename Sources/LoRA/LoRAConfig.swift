/// Low-rank adaptation settings, with PEFT's meaning for every field.
public struct LoRAConfig: Sendable, Equatable {
    public enum Targets: Sendable, Equatable {
        /// Every linear layer but the output head (PEFT's "all-linear").
        case allLinear
        /// Layers whose module name ends with one of these (PEFT's target_modules list:
        /// "q_proj", "self_attn.v_proj", …).
        case names([String])
    }

    public enum Initialization: String, Sendable, CaseIterable, Codable {
        /// PEFT's default: A Kaiming-uniform (bound 1/√in), B zero, so training starts at the base.
        case `default`
        /// A normal with std 1/r, B zero.
        case gaussian
        /// PiSSA: A and B from the top-r singular triplets of the base weight, the base replaced
        /// by the residual W − scale·B·A (then quantized), so training starts at the base.
        case pissa
        /// LoftQ: alternate quantizing the base and an SVD of what quantization lost, so that
        /// Q + scale·B·A is closer to the original weight than Q alone.
        case loftq

        /// Whether initialisation reads the source weights and replaces the frozen base.
        public var rewritesBase: Bool { self == .pissa || self == .loftq }
    }

    public var rank: Int
    public var alpha: Float
    public var dropout: Float
    /// rsLoRA: scale by alpha/√r instead of alpha/r.
    public var rsLoRA: Bool
    public var targets: Targets
    /// Only these layer indices (nil: every layer).
    public var layers: Set<Int>?
    public var initialization: Initialization
    /// LoftQ's alternations of quantization and SVD (PEFT's `loftq_iter`).
    public var loftqIterations: Int

    public init(rank: Int = 16, alpha: Float = 32, dropout: Float = 0, rsLoRA: Bool = false,
                targets: Targets = .allLinear, layers: Set<Int>? = nil, initialization: Initialization = .default,
                loftqIterations: Int = 1) {
        self.loftqIterations = loftqIterations
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.rsLoRA = rsLoRA
        self.targets = targets
        self.layers = layers
        self.initialization = initialization
    }

    /// The factor on B·A: alpha/r, or alpha/√r with rsLoRA.
    public var scale: Float { rsLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// Whether the module `name` (Hugging Face naming) gets an adapter.
    public func targets(_ name: String) -> Bool {
        if name == "lm_head" { return false }
        if let layers {
            let parts = name.split(separator: ".")
            guard parts.count > 2, parts[1] == "layers", let index = Int(parts[2]), layers.contains(index) else { return false }
        }
        switch targets {
        case .allLinear: return true
        case .names(let suffixes): return suffixes.contains { name == $0 || name.hasSuffix("." + $0) }
        }
    }
}

/// In a recipe or `adapter_config.json`-like setting: the text `all-linear`, one module name,
/// or a list of names.
extension LoRAConfig.Targets: Codable {
    public init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer().decode(String.self) {
            self = single == "all-linear" ? .allLinear : .names([single])
            return
        }
        var list = try decoder.unkeyedContainer()
        var names: [String] = []
        while !list.isAtEnd { names.append(try list.decode(String.self)) }
        self = .names(names)
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .allLinear:
            var single = encoder.singleValueContainer()
            try single.encode("all-linear")
        case .names(let names):
            var list = encoder.unkeyedContainer()
            for name in names { try list.encode(name) }
        }
    }
}
