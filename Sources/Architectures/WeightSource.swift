import Quantization
import TensorCore

/// Where a model's weights come from (a GGUF file, a safetensors folder, a test fixture).
///
/// Names are Hugging Face's (`model.layers.3.self_attn.q_proj.weight`): they are what PEFT
/// adapters and merged checkpoints use, so the rest of Lorikeet speaks only them. A source for
/// another naming scheme translates in one place, and returns matrices in Hugging Face's
/// orientation ([out, in], rotary rows in "rotate half" order).
public protocol WeightSource {
    /// Names the error messages use for this source (usually the file path).
    var sourceName: String { get }
    func contains(_ name: String) -> Bool
    /// A 2-D weight [out, in], still encoded.
    func matrix(_ name: String) throws(ModelError) -> any QuantizedMatrix
    /// A 1-D weight (norm scale, bias), decoded to Float32.
    func vector(_ name: String) throws(ModelError) -> Tensor
}

/// Hugging Face tensor names of the Llama family, written once.
public enum WeightNames {
    public static let embedding = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let outputHead = "lm_head.weight"

    /// `model.layers.{i}.{suffix}`.
    public static func layer(_ index: Int, _ suffix: String) -> String { "model.layers.\(index).\(suffix)" }

    public enum Suffix {
        public static let attentionNorm = "input_layernorm.weight"
        public static let postAttentionNorm = "post_attention_layernorm.weight"   // Llama: the MLP's pre-norm
        public static let preFeedforwardNorm = "pre_feedforward_layernorm.weight" // Gemma 2
        public static let postFeedforwardNorm = "post_feedforward_layernorm.weight" // Gemma 2
        public static let q = "self_attn.q_proj", k = "self_attn.k_proj", v = "self_attn.v_proj", o = "self_attn.o_proj"
        public static let qkv = "self_attn.qkv_proj"          // Phi-3
        public static let qNorm = "self_attn.q_norm.weight", kNorm = "self_attn.k_norm.weight"  // Qwen3
        public static let gate = "mlp.gate_proj", up = "mlp.up_proj", down = "mlp.down_proj"
        public static let gateUp = "mlp.gate_up_proj"         // Phi-3
    }
}
