import Foundation
import Lorikeet

/// One name a request's `model` can choose: the base, or the base with one adapter.
///
/// Each adapter entry holds its own working copy of the base with the adapter applied
/// (``BaseModel`` carries at most one adapter, applied in place), loaded with the same rule as
/// `lorikeet generate` (`onto: .trained`), so a reply is the text `generate` gives. Its model is
/// used only on the engine's thread.
final class ModelEntry: @unchecked Sendable {
    let name: String
    let model: BaseModel
    /// The adapter file or folder, nil for the base.
    let adapterPath: String?
    /// Unix seconds when it was loaded (OpenAI's `created`).
    let created: Int

    init(name: String, model: BaseModel, adapterPath: String?) {
        self.name = name
        self.model = model
        self.adapterPath = adapterPath
        created = Int(Date().timeIntervalSince1970)
    }
}

/// The models the server answers for, by name; adapters come and go at run time.
final class ModelRegistry: @unchecked Sendable {
    /// What the base was loaded from (a path or `smollm2`): each adapter loads its own copy.
    let baseArgument: String
    let baseName: String
    private let lock = NSLock()
    private var entries: [String: ModelEntry] = [:]
    private var order: [String] = []

    init(base: BaseModel, name: String, argument: String) {
        baseArgument = argument
        baseName = name
        entries[name] = ModelEntry(name: name, model: base, adapterPath: nil)
        order = [name]
    }

    /// The entry named `name`, or nil.
    func entry(_ name: String) -> ModelEntry? { lock.withLock { entries[name] } }

    /// Every entry, the base first, then adapters in the order they were added.
    var all: [ModelEntry] { lock.withLock { order.compactMap { entries[$0] } } }

    var names: [String] { lock.withLock { order } }

    /// Checks that `name` may name a new adapter.
    func checkNewName(_ name: String) throws(APIError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:")
        guard (1...64).contains(name.count), name.allSatisfy({ allowed.contains($0) }) else {
            throw .invalid("an adapter name is 1 to 64 letters, digits, '.', '_', '-' or ':' (got '\(name.prefix(80))')", param: "name")
        }
        if entry(name) != nil {
            throw APIError(status: 409, message: "'\(name)' is already loaded; DELETE /v1/adapters/\(name) first", param: "name",
                           code: "adapter_exists")
        }
    }

    /// Loads the adapter at `path` over a fresh copy of the base and adds it as `name`. Slow (it
    /// reads the base again): call it off the engine's thread.
    @discardableResult
    func addAdapter(name: String, path: String) throws(APIError) -> ModelEntry {
        try checkNewName(name)
        let model: BaseModel
        do {
            let source = try AdapterSource.load(path)
            model = try BaseModel(loading: baseArgument)
            try model.apply(source, onto: .trained)
        } catch {
            throw .invalid("cannot load the adapter '\(name)' from \(path): \(error)", param: "path", code: "adapter_load_failed")
        }
        let entry = ModelEntry(name: name, model: model, adapterPath: path)
        lock.lock()
        defer { lock.unlock() }
        guard entries[name] == nil else { throw APIError(status: 409, message: "'\(name)' is already loaded", param: "name", code: "adapter_exists") }
        entries[name] = entry
        order.append(name)
        return entry
    }

    /// Removes the adapter `name`; requests already running with it finish with it.
    func removeAdapter(_ name: String) throws(APIError) {
        lock.lock()
        defer { lock.unlock() }
        guard name != baseName else { throw .invalid("'\(name)' is the base model; only adapters can be removed", param: "name") }
        guard entries.removeValue(forKey: name) != nil else { throw .unknownModel(name, known: order) }
        order.removeAll { $0 == name }
    }
}
