// The types of the lower modules that appear in this library's API, re-exported so that
// `import Lorikeet` is all a program needs. The modules behind them stay implementation detail.

@_exported import struct Training.Recipe
@_exported import enum Training.RecipeError
@_exported import struct Training.RecipeDocument
@_exported import enum Training.RecipeValue
@_exported import struct Training.Checkpoint
@_exported import enum Training.CheckpointError
@_exported import struct Training.BaseIdentity
@_exported import struct Training.StoredTensor
@_exported import struct Training.TrainerState
@_exported import struct Training.TrainingMetrics
@_exported import struct Training.StepReport
@_exported import struct Training.RunDirectory
@_exported import class Training.Trainer
@_exported import struct Training.LearningRateSchedule
@_exported import struct Training.ParallelStepReport
@_exported import struct Training.BatchShare
@_exported import protocol Training.GradientReducer
@_exported import enum Training.ReducerError
@_exported import class Training.SingleProcess
@_exported import class Training.MPIReducer
@_exported import enum Training.DataParallel

@_exported import enum Architectures.BasePrecision
@_exported import struct Formats.ModelLicense

@_exported import struct Architectures.ModelConfig
@_exported import enum Architectures.ModelLocation
@_exported import class Architectures.DecoderModel
@_exported import struct Architectures.ExecutionOptions
@_exported import enum Architectures.ModelError
@_exported import class Architectures.AdapterWeights

@_exported import struct LoRA.LoRAConfig

@_exported import struct Decoding.SamplingOptions
@_exported import class Decoding.Generator

@_exported import struct Evaluation.EvalReport
@_exported import struct Evaluation.EvalMetrics
@_exported import struct Evaluation.EvalMetricMeans
@_exported import struct Evaluation.LossMeasurement
@_exported import enum Evaluation.LossCurveChart

@_exported import struct Datasets.DataStatistics
@_exported import enum Datasets.TokenizationSource
@_exported import struct Datasets.BatchingOptions
@_exported import enum Datasets.TrainOn
@_exported import enum Datasets.DatasetFormat
@_exported import struct Datasets.FieldNames
@_exported import struct Datasets.DataCursor

@_exported import protocol Tokenization.Tokenizer
@_exported import struct Tokenization.ChatTemplate
@_exported import enum Tokenization.JinjaValue

@_exported import class TensorCore.Tensor
@_exported import enum TensorCore.ComputeDType
@_exported import struct TensorCore.RandomGenerator

@_exported import enum Export.GGUFMergeEncoding
@_exported import struct Export.PlainLoRAAdapter
@_exported import class Formats.SafetensorsFile
@_exported import enum TensorCore.ProcessMemory
@_exported import struct Datasets.FOLDOC
@_exported import enum Datasets.DataError
