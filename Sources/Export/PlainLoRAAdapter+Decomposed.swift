import Training
import Formats
import Foundation
import LoRA
import Architectures
import TensorCore

extension PlainLoRAAdapter {
    /// A checkpoint's adapter as a plain LoRA over the original base, also for PiSSA and LoftQ.
    ///
    /// Those were trained over a rewritten base W_res = W − s·B0·A0 (B0, A0: the initial
    /// decomposition), so what training changed relative to W is ΔW = s·(B·A − B0·A0): a rank-2r
    /// LoRA with A' = [A; A0] [2r, I] and B' = [B, −B0] [O, 2r], as PEFT's
    /// `path_initial_model_for_weight_conversion` writes it. The scale stays s: r doubles, and
    /// alpha doubles too (alpha/r), or grows by √2 with rsLoRA (alpha/√r), PEFT's convention.
    ///
    /// B0 and A0 are not stored in checkpoints; they are recomputed by initialising the recipe's
    /// adapter on `originalBase` (a freshly loaded copy of the exact base the run trained on,
    /// which this rewrites): the decomposition is deterministic, and only the product B0·A0 enters.
    ///
    /// Exactness: with an f32 base, W + ΔW is the trained model. With a quantized PiSSA base the
    /// trained model is Q(W_res) + s·B·A, so the converted adapter over W differs by W_res's
    /// quantization error (PEFT warns of the same gap). LoftQ fits W ≈ Q + s·B0·A0: over W the
    /// converted adapter differs from the trained Q + s·B·A by that fit's residual
    /// W − Q − s·B0·A0, the error LoftQ minimises; this is the choice that gives an adapter for
    /// the original weights, which is what other tools load.
    public init(checkpoint: Checkpoint, source: String, originalBase: DecoderModel) throws(ExportError) {
        let recipe = checkpoint.recipe
        let trained = checkpoint.adapterTensors
        guard recipe.lora.initialization.rewritesBase else {
            try self.init(checkpoint: checkpoint, source: source, tensors: trained)
            return
        }
        let initial: LoRAAdapter
        do { initial = try LoRAAdapter.attach(to: originalBase, recipe: recipe) } catch { throw .model(error) }
        var converted: [String: Tensor] = [:]
        for (module, layer) in initial.layers {
            let (nameA, nameB) = (LoRAAdapter.pefName(module, "A"), LoRAAdapter.pefName(module, "B"))
            guard let a = trained[nameA], let b = trained[nameB] else { throw .model(.missingTensor(nameA, source: source)) }
            guard a.shape == layer.a.shape, b.shape == layer.b.shape else {
                throw .model(.shapeMismatch(tensor: nameA, expected: layer.a.shape, found: a.shape, source: source))
            }
            converted[nameA] = Self.stackRows(a, layer.a)               // [2r, I]
            converted[nameB] = Self.joinColumns(b, negated: layer.b)   // [O, 2r]
        }
        if let extra = Set(trained.keys).subtracting(converted.keys).sorted().first {
            throw .invalidAdapter("\(source): tensor '\(extra)' matches no module the recipe adapts on this base (another base?)")
        }
        var lora = recipe.lora.config
        lora.rank *= 2
        lora.alpha *= lora.rsLoRA ? Float(2).squareRoot() : 2
        lora.initialization = .default
        let how = recipe.lora.initialization.rawValue
        self.init(tensors: converted, lora: lora, baseName: checkpoint.base.name, license: checkpoint.base.license,
                  provenance: "Trained with Lorikeet as a \(how) adapter (r=\(recipe.lora.rank), alpha=\(Float(recipe.lora.alpha))) over a \(recipe.base.rawValue) residual base, "
                      + "converted to a rank-\(lora.rank) LoRA for the original base: [A; A0], [B, -B0].")
        recipeYAML = recipe.yaml
    }

    /// Whether the checkpoint's adapter was trained over a rewritten base (PiSSA, LoftQ), so
    /// that exporting it needs `init(checkpoint:source:originalBase:)`.
    public static func needsOriginalBase(_ checkpoint: Checkpoint) -> Bool {
        checkpoint.recipe.lora.initialization.rewritesBase
    }

    /// [top; bottom]: `top` [r, I] above `bottom` [r, I].
    static func stackRows(_ top: Tensor, _ bottom: Tensor) -> Tensor {
        Tensor(shape: [top.shape[0] + bottom.shape[0], top.shape[1]], scalars: top.scalars + bottom.scalars)
    }

    /// [left, −right]: `left` [O, r] beside the negation of `right` [O, r].
    static func joinColumns(_ left: Tensor, negated right: Tensor) -> Tensor {
        let (rows, l, r) = (left.shape[0], left.shape[1], right.shape[1])
        let (x, y) = (left.scalars, right.scalars)
        var out = [Float](repeating: 0, count: rows * (l + r))
        for row in 0..<rows {
            for k in 0..<l { out[row * (l + r) + k] = x[row * l + k] }
            for k in 0..<r { out[row * (l + r) + l + k] = -y[row * r + k] }
        }
        return Tensor(shape: [rows, l + r], scalars: out)
    }
}
