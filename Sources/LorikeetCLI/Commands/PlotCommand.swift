import ArgumentParser
import Foundation
import Lorikeet

/// An SVG of a checkpoint's training and validation loss curves (no plotting library).
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plot", abstract: "Write an SVG of a checkpoint's loss curves.")

    @Argument(help: "A Lorikeet checkpoint (.h5).") var checkpoint: String
    @Option(help: "Output SVG (default: the checkpoint's name with .svg).") var output: String?

    func run() throws {
        let c = try Checkpoint(contentsOf: checkpoint)
        let m = c.metrics
        guard !m.steps.isEmpty else { throw CLIError("\(checkpoint): no training metrics to plot") }
        let path = output ?? (checkpoint as NSString).deletingPathExtension + ".svg"
        let svg = LossCurveChart.svg(train: zip(m.steps, m.losses).map { (Double($0), $1) },
                                     validation: zip(m.validationSteps, m.validationLosses).map { (Double($0), $1) }, title: c.base.name)
        try LossCurveChart.write(svg, to: path)
        print(path)
    }
}
