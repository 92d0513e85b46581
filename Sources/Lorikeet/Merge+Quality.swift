import Foundation

/// What quantizing a merged model kept of the adapter: the held-out loss of the base, of the
/// adapter unmerged (exact) and of the merged file as written, on the same batches. Quantizing
/// a merged model can erase a fine-tune (the update is small next to a 4-bit step); this is
/// the measurement, so nobody has to guess.
public struct MergeQuality: Sendable, Equatable {
    public var baseLoss: Double
    public var adapterLoss: Double
    public var mergedLoss: Double
    /// The data the losses are over (a file, or the checkpoint's validation set) and its size.
    public var data: String
    public var examples: Int
    public var trainedTokens: Int

    /// The three losses over `data` (`examples` examples, `trainedTokens` tokens).
    public init(baseLoss: Double, adapterLoss: Double, mergedLoss: Double, data: String, examples: Int, trainedTokens: Int) {
        self.baseLoss = baseLoss
        self.adapterLoss = adapterLoss
        self.mergedLoss = mergedLoss
        self.data = data
        self.examples = examples
        self.trainedTokens = trainedTokens
    }

    /// Share of the adapter's gain that may be lost before `merge` warns.
    public static let erasedShareLimit = 0.25

    /// base − adapter: what the adapter gained (positive when it helps).
    public var gain: Double { baseLoss - adapterLoss }
    /// (merged − adapter) / gain: the share of the gain the merged file lost (nil when the
    /// adapter gained nothing to lose).
    public var erasedShare: Double? { gain > 0 ? (mergedLoss - adapterLoss) / gain : nil }
    /// True when more than `erasedShareLimit` of the gain is gone.
    public var erasesTooMuch: Bool { (erasedShare ?? 0) > Self.erasedShareLimit }
}

extension MergeRequest {
    /// The losses of base, adapter and the merged file at `output`, on `evalData` or (nil) the
    /// checkpoint's validation set, the first `evalLimit` examples (0: all).
    func qualityReport() throws(LorikeetError) -> MergeQuality {
        var request = EvaluationRequest(model: model, adapter: adapter, onto: onto, data: evalData, limit: evalLimit, compare: true)
        request.alsoModels = [(label: "merged (\(quant.rawValue.uppercased()))", path: output)]
        let report = try request.run()
        guard report.runs.count == 3 else { throw .data("the merge-quality evaluation measured \(report.runs.count) of 3 models") }
        let (base, adapted, merged) = (report.runs[0], report.runs[1], report.runs[2])
        return MergeQuality(baseLoss: base.loss, adapterLoss: adapted.loss, mergedLoss: merged.loss, data: report.data,
                            examples: adapted.lossExamples, trainedTokens: adapted.trainedTokens)
    }
}
