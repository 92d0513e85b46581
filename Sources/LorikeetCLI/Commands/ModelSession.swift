import Formats
import Foundation
import Architectures
import Tokenization
import Training

/// A base model loaded for work: weights, tokenizer, chat template and identity (name,
/// license, file hash). GGUF files carry all four; Hugging Face folders are not wired here yet.
struct ModelSession {
    let path: String
    let model: DecoderModel
    let tokenizer: any Tokenizer
    let template: ChatTemplate?
    let name: String
    let license: String

    init(_ argument: String) throws {
        let location: ModelLocation
        do { location = try ModelLocation.resolve(argument) } catch { throw CLIError(error.description) }
        guard case .gguf(let path) = location else {
            throw CLIError("\(argument): training and evaluation from a Hugging Face folder are not supported yet (its tokenizer.json is, via lorikeet tokenize); use a GGUF file")
        }
        self.path = path
        do {
            let file = try GGUFFile(path: path)
            model = try DecoderModel(ggufPath: path)
            tokenizer = try makeTokenizer(gguf: file)
            template = try file.metadata["tokenizer.chat_template"]?.string.map { try ChatTemplate(source: $0) }
            name = file.metadata["general.name"]?.string ?? (path as NSString).lastPathComponent
            license = file.metadata["general.license"]?.string ?? "unknown"
        } catch let e as FormatError { throw CLIError(e.description) } catch let e as ModelError { throw CLIError(e.description) }
        catch let e as TokenizerError { throw CLIError(e.description) } catch let e as TemplateError { throw CLIError("\(path): \(e.description)") }
    }

    func identity() throws -> BaseIdentity {
        do { return BaseIdentity(name: name, path: path, sha256: try SHA256.hexDigest(ofFile: path), license: license) } catch {
            throw CLIError(error.description)
        }
    }
}

/// Standard error, for everything that is not the command's product.
func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%dm%02ds", s / 60, s % 60)
}
