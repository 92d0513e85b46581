import Architectures
import TensorCore

/// The adapters attached to a model, by PEFT module name.
public final class LoRAAdapter {
    public let config: LoRAConfig
    /// Hugging Face module name (`model.layers.0.self_attn.q_proj`) → its adapted layer.
    public private(set) var layers: [String: LoRALinear] = [:]

    /// Wraps every targeted projection of `model` in a fresh LoRA layer. PiSSA and LoftQ read
    /// each targeted weight and replace it by a base encoded in `basePrecision`, so they must
    /// run on the source weights, before `quantizeBase`; the other initialisations leave the
    /// base as it is.
    public init(attachingTo model: DecoderModel, config: LoRAConfig, rng: inout RandomGenerator,
                basePrecision: BasePrecision = .f32) throws(ModelError) {
        self.config = config
        var created: [String: LoRALinear] = [:]
        var generator = rng
        var failure: ModelError?
        model.replaceLinears { name, layer in
            guard failure == nil, config.targets(name) else { return layer }
            let adapted: LoRALinear
            if config.initialization.rewritesBase {
                do throws(ModelError) { adapted = try LoRALinear(decomposing: layer, name: name, config: config, basePrecision: basePrecision, rng: &generator) } catch {
                    failure = error
                    return layer
                }
            } else {
                adapted = LoRALinear(base: layer, config: config, rng: &generator)
            }
            created[name] = adapted
            return adapted
        }
        if let failure { throw failure }
        rng = generator
        layers = created
    }

    /// Trainable tensors in a stable order (sorted by PEFT name).
    public var parameters: [(name: String, tensor: Tensor)] {
        layers.keys.sorted().flatMap { module -> [(String, Tensor)] in
            guard let layer = layers[module] else { return [] }
            return [(Self.pefName(module, "A"), layer.a), (Self.pefName(module, "B"), layer.b)]
        }
    }

    /// PEFT's tensor name: base_model.model.<module>.lora_<A|B>.weight.
    public static func pefName(_ module: String, _ which: String) -> String {
        "base_model.model.\(module).lora_\(which).weight"
    }

    public func setTraining(_ training: Bool) { for layer in layers.values { layer.isTraining = training } }

    /// Overwrites adapter tensors from `tensors` (PEFT names). Every adapter tensor must be
    /// given with its exact shape, and every given tensor must be used: an adapter from another
    /// base or configuration is refused by name.
    public func load(_ tensors: [String: Tensor], source: String) throws(ModelError) {
        var unused = Set(tensors.keys)
        for (name, target) in parameters {
            guard let value = tensors[name] else { throw .missingTensor(name, source: source) }
            guard value.shape == target.shape else {
                throw .shapeMismatch(tensor: name, expected: target.shape, found: value.shape, source: source)
            }
            target.withUnsafeMutableBufferPointer { dst in value.withUnsafeBufferPointer { src in _ = dst.update(fromContentsOf: src) } }
            unused.remove(name)
        }
        if let extra = unused.sorted().first {
            throw .unreadable("\(source): tensor '\(extra)' matches no adapted module of this model (adapter for another base or configuration?)")
        }
    }
}
