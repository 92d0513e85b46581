// Fine-tunes, evaluates, merges and samples from a model through Lorikeet's public API only.
//
//     swift run FineTune MODEL.gguf WORK_FOLDER
//
// MODEL is any GGUF Lorikeet reads (the repository's script passes a tiny test model); the
// training data is written into WORK_FOLDER.
import Foundation
import Lorikeet

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: FineTune MODEL.gguf WORK_FOLDER\n".utf8))
    exit(64)
}
let (model, work) = (arguments[1], arguments[2])

do {
    // A small plain-text dataset: a folder with train.jsonl and valid.jsonl.
    let sentences = ["the adapter and the attention", "an embedding of the adapter", "attention and embeddings", "the adapter in the attention"]
    try FileManager.default.createDirectory(atPath: work + "/data", withIntermediateDirectories: true)
    for (split, count) in [("train", 16), ("valid", 4)] {
        let lines = (0..<count).map { #"{"text": "\#(sentences[$0 % sentences.count])"}"# }
        try (lines.joined(separator: "\n") + "\n").write(toFile: work + "/data/\(split).jsonl", atomically: true, encoding: .utf8)
    }

    // 1. Fine-tune two steps; the closure renders progress and could answer .stop.
    var recipe = Recipe()
    recipe.model.path = model
    recipe.data.path = work + "/data"
    recipe.data.maxSeqLen = 16
    recipe.lora.rank = 4
    recipe.training.steps = 2
    recipe.training.batchSize = 2
    recipe.training.learningRate = 1e-2
    recipe.training.warmupSteps = 0
    recipe.output.saveEvery = 0
    let fineTune = try FineTune(recipe: recipe, runDirectory: work + "/run")
    print("fine-tuning \(fineTune.summary.base.name): \(fineTune.summary.adaptedModules) adapted modules, \(fineTune.summary.trainableParameters) trainable parameters")
    let outcome = try fineTune.run { event in
        switch event {
        case .step(let report): print(String(format: "step %d  loss %.4f", report.step, report.loss))
        case .validation(let step, let loss, _, _): print(String(format: "step %d  validation loss %.4f", step, loss))
        case .saved(let path, _, let reason): print("saved \(path) (\(reason))")
        }
        return .more
    }

    // 2. Evaluate the adapter on its validation set, with the base alone beside it.
    let report = try EvaluationRequest(adapter: outcome.checkpoint, data: work + "/data/valid.jsonl", compare: true).run()
    for run in report.runs { print(String(format: "%@: loss %.4f, perplexity %.2f", run.label, run.loss, run.perplexity)) }

    // 3. Merge into a GGUF that llama.cpp loads.
    var merge = MergeRequest(adapter: outcome.checkpoint, output: work + "/merged.gguf", format: .gguf)
    merge.force = true
    let merged = try merge.run()
    print("merged \(merged.mergedProjections) projections into \(merged.output)")

    // 4. Generate from the merged model, token by token, as an AsyncSequence.
    let base = try BaseModel(loading: merged.output)
    var text = ""
    for try await event in try base.generate("the adapter", parseSpecial: false, options: .greedy(maxTokens: 8)) {
        if case .text(let piece) = event { text += piece }
    }
    print("generated: \(text)")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
