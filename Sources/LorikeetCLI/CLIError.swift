/// A failure the CLI reports as one clear line ("Error: …", exit 1), without a usage dump:
/// the arguments were fine, the work could not be done.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
