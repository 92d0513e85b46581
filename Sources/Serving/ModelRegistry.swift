import Foundation
import Lorikeet

/// One name a request's `model` can choose: the base, or the base with one adapter.
///
/// An adapter is data — its A, B and scale per projection — over a decoder shared with every
/// other entry of the same base representation (see ``ModelRegistry``), loaded with the same
/// rule as `lorikeet generate` (`onto: .trained`), so a reply is the text `generate` gives.
/// Its decoder is used only on the engine's thread.
final class ModelEntry: @unchecked Sendable {
    let name: String
    /// The base as loaded: tokenizer, chat template and stop tokens (an adapter changes none).
    let base: BaseModel
    /// The base weights this entry runs on (shared by all entries of `representation`).
    let decoder: DecoderModel
    /// The adapter's weights, nil for the base.
    let adapter: AdapterWeights?
    /// Which base weights `decoder` holds: `source`, `nf4`, …
    let representation: String
    /// The adapter file or folder, nil for the base.
    let adapterPath: String?
    /// Unix seconds when it was loaded (OpenAI's `created`).
    let created: Int

    init(name: String, base: BaseModel, decoder: DecoderModel, adapter: AdapterWeights?, representation: String, adapterPath: String?) {
        self.name = name
        self.base = base
        self.decoder = decoder
        self.adapter = adapter
        self.representation = representation
        self.adapterPath = adapterPath
        created = Int(Date().timeIntervalSince1970)
    }
}

/// The models the server answers for, by name; adapters come and go at run time.
///
/// One decoder per base representation: the base as loaded (`source`) serves the base and
/// every adapter trained over the file's own weights (PEFT adapters, `quantization.base:
/// source` checkpoints); the first adapter trained over a re-encoding (`nf4`, `q8_0`, `f32`,
/// deterministic given the file) brings that re-encoded decoder, which later adapters of the
/// same encoding share; a PiSSA/LoftQ adapter, whose residual base is its own, keeps its own.
/// A representation no entry uses any more is dropped (running requests keep theirs alive).
final class ModelRegistry: @unchecked Sendable {
    let baseName: String
    let base: BaseModel
    private let lock = NSLock()
    private var entries: [String: ModelEntry] = [:]
    private var order: [String] = []
    private var decoders: [String: DecoderModel] = [:]

    init(base: BaseModel, name: String) {
        self.base = base
        baseName = name
        let source = BaseModel.sourceRepresentation
        entries[name] = ModelEntry(name: name, base: base, decoder: base.model, adapter: nil, representation: source, adapterPath: nil)
        decoders[source] = base.model
        order = [name]
    }

    /// Distinct base decoders held (one per representation in use).
    var decoderCount: Int { lock.withLock { decoders.count } }

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

    /// Loads the adapter at `path` as weights and adds it as `name`, over the decoder of its base
    /// representation (brought by this adapter when it is the first of it). Slow (it reads the
    /// base again to apply the adapter exactly as `generate` does): call it off the engine's thread.
    @discardableResult
    func addAdapter(name: String, path: String) throws(APIError) -> ModelEntry {
        try checkNewName(name)
        let loaded: LoadedAdapterWeights
        do {
            loaded = try base.loadAdapterWeights(try AdapterSource.load(path))
        } catch {
            throw .invalid("cannot load the adapter '\(name)' from \(path): \(error)", param: "path", code: "adapter_load_failed")
        }
        lock.lock()
        defer { lock.unlock() }
        guard entries[name] == nil else { throw APIError(status: 409, message: "'\(name)' is already loaded", param: "name", code: "adapter_exists") }
        let decoder = decoders[loaded.representation] ?? loaded.decoder
        decoders[loaded.representation] = decoder
        let entry = ModelEntry(name: name, base: base, decoder: decoder, adapter: loaded.weights, representation: loaded.representation,
                               adapterPath: path)
        entries[name] = entry
        order.append(name)
        return entry
    }

    /// Removes the adapter `name`; requests already running with it finish with it.
    func removeAdapter(_ name: String) throws(APIError) {
        lock.lock()
        defer { lock.unlock() }
        guard name != baseName else { throw .invalid("'\(name)' is the base model; only adapters can be removed", param: "name") }
        guard let removed = entries.removeValue(forKey: name) else { throw .unknownModel(name, known: order) }
        order.removeAll { $0 == name }
        if !entries.values.contains(where: { $0.representation == removed.representation }) {
            decoders.removeValue(forKey: removed.representation)
        }
    }
}
