import Foundation

/// Output folders that appear whole or not at all: the files are written into
/// `<path>.partial-<pid>`, and only a complete folder is renamed to `path`. A failure (full
/// disk, bad tensor, crash) leaves no folder under the real name that looks finished.
public enum AtomicFolder {
    /// Refuses an existing `path` unless `replacing` (the CLI's `--force`), before any work.
    public static func checkOutput(_ path: String, replacing: Bool) throws(FormatError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !replacing else { return }
        throw .io(path: path, reason: "already exists; choose another output or pass --force to replace it")
    }

    /// Runs `fill` with an empty partial folder, then moves it to `path` (replacing an existing
    /// one when `replacing`). On any error the partial folder is removed and the error rethrown.
    public static func create(at path: String, replacing: Bool, _ fill: (String) throws -> Void) throws {
        try checkOutput(path, replacing: replacing)
        let fm = FileManager.default
        let partial = path + ".partial-\(getpid())"
        try? fm.removeItem(atPath: partial)
        do { try fm.createDirectory(atPath: partial, withIntermediateDirectories: true) } catch {
            throw FormatError.io(path: path, reason: "cannot create \(partial) (\(error.localizedDescription))")
        }
        do {
            try fill(partial)
            try moveIntoPlace(partial, path)
        } catch {
            try? fm.removeItem(atPath: partial)
            throw error
        }
    }

    /// rename(2) of a finished file or folder to `path`; an existing `path` is first moved aside
    /// and removed only once the new one is in place.
    public static func moveIntoPlace(_ partial: String, _ path: String) throws(FormatError) {
        let fm = FileManager.default
        var aside: String?
        if fm.fileExists(atPath: path) {
            let old = path + ".replaced-\(getpid())"
            try? fm.removeItem(atPath: old)
            guard rename(path, old) == 0 else {
                throw .io(path: path, reason: "cannot move the existing output aside (\(String(cString: strerror(errno))))")
            }
            aside = old
        }
        guard rename(partial, path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let aside { rename(aside, path) }
            throw .io(path: path, reason: "cannot rename \(partial) into place (\(reason))")
        }
        if let aside { try? fm.removeItem(atPath: aside) }
    }
}
