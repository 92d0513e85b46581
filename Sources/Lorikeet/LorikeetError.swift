import Architectures
import Datasets
import Evaluation
import Export
import Formats
import Tokenization
import Training

/// Every failure the library reports: what went wrong, naming the file, line, tensor or
/// setting at fault, and what to do about it. `description` is a complete sentence for a
/// person; the case says which layer failed, for a program.
public enum LorikeetError: Error, CustomStringConvertible {
    /// A model, adapter or checkpoint file could not be read or does not fit.
    case model(String)
    /// A recipe or a setting is invalid.
    case recipe(String)
    /// A dataset could not be read or encoded.
    case data(String)
    /// Training failed (a non-finite loss, a checkpoint that cannot be written).
    case training(String)
    /// A merge or an export could not be written.
    case export(String)
    /// Evaluation or its report failed.
    case evaluation(String)
    /// The request itself is inconsistent (flags that exclude each other, a missing input).
    case invalidRequest(String)
    /// The ranks of a data-parallel run could not start, talk or agree (each message names the rank).
    case parallel(String)

    /// The message for a person.
    public var description: String {
        switch self {
        case .model(let s), .recipe(let s), .data(let s), .training(let s), .export(let s), .evaluation(let s), .invalidRequest(let s),
             .parallel(let s):
            return s
        }
    }

    /// The library error of any module's error.
    static func from(_ error: any Error) -> LorikeetError {
        switch error {
        case let e as LorikeetError: return e
        case let e as ModelError: return .model(e.description)
        case let e as FormatError: return .model(e.description)
        case let e as TokenizerError: return .model(e.description)
        case let e as TemplateError: return .model(e.description)
        case let e as CheckpointError: return .model(e.description)
        case let e as RecipeError: return .recipe(e.description)
        case let e as DataError: return .data(e.description)
        case let e as TrainingError: return .training(e.description)
        case let e as ExportError: return .export(e.description)
        case let e as EvaluationError: return .evaluation(e.description)
        case let e as ReducerError: return .parallel(e.description)
        default: return .invalidRequest("\(error)")
        }
    }
}

/// Runs `body`, turning any module's error into a `LorikeetError`.
func lorikeet<T>(_ body: () throws -> T) throws(LorikeetError) -> T {
    do { return try body() } catch { throw LorikeetError.from(error) }
}
