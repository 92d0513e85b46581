import LoRA
import Architectures
import Quantization
import TensorCore

extension LoRAAdapter {
    /// Encodes `model`'s base as the recipe says and attaches its adapters, in the order the
    /// initialisation needs: PiSSA and LoftQ decompose the source weights of the layers they
    /// adapt (and encode what remains themselves) before the other layers are quantized; the
    /// others attach over the already quantized base. Training, evaluation and resume all come
    /// through here, so a PiSSA base is rebuilt exactly as it was trained against.
    public static func attach(to model: DecoderModel, recipe: Recipe) throws(ModelError) -> LoRAAdapter {
        var rng = RandomGenerator(seed: recipe.training.seed)
        if recipe.lora.initialization.rewritesBase {
            let adapter = try LoRAAdapter(attachingTo: model, config: recipe.lora.config, rng: &rng, basePrecision: recipe.base)
            try model.quantizeBase(to: recipe.base)
            return adapter
        }
        try model.quantizeBase(to: recipe.base)
        return try LoRAAdapter(attachingTo: model, config: recipe.lora.config, rng: &rng)
    }

    /// Encoded bytes of the frozen weights under the adapted layers (the model's own count
    /// stops at a LoRA layer).
    public var frozenBaseBytes: Int {
        layers.values.reduce(0) { $0 + (($1.base as? QuantizedLinear)?.weight.encodedBytes ?? 0) }
    }
}
