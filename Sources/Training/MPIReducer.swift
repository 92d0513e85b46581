import CMPI
import Foundation

/// The ranks of an `mpirun` job, over Open MPI loaded at run time (`CMPI`: dlopen of
/// `libmpi.so.40`, or `LORIKEET_MPI_LIBRARY`). One per process (MPI starts once): get it from
/// ``shared(environment:)``, which ``DataParallel/reducer(environment:)`` calls when Open MPI's
/// launcher started the process.
///
/// Failure handling, so a job never hangs on a dead or stuck rank:
/// - a rank killed outright (signal, out of memory) is seen by `mpirun`, which stops every
///   other rank and names the dead one;
/// - a rank whose run fails (bad data, unwritable folder, NaN) leaves through `MPI_Abort`
///   (the exit handler aborts unless ``setCleanExit(_:)`` said the run finished), so its peers
///   stop too;
/// - a collective that waits longer than `timeout` seconds (a peer that hangs, a network that
///   stopped) trips a watchdog thread, which reports through ``onTimeout`` and ends this
///   process with status 75, and `mpirun` then stops the job.
/// Collectives return errors (`MPI_ERRORS_RETURN`) as ``ReducerError/failed(rank:operation:reason:)``.
public final class MPIReducer: GradientReducer, @unchecked Sendable {
    public let rank: Int
    public let ranks: Int
    public let transport: String
    /// Seconds one collective may wait for the others before the watchdog stops the job (0:
    /// never). From `LORIKEET_MPI_TIMEOUT`, default 600: a peer may be saving a checkpoint or
    /// still loading its model, never for ten minutes.
    public let timeout: Double
    /// Called from the watchdog's thread with a message naming this rank and the collective,
    /// right before the process exits with status 75. Set by the program (the CLI writes the
    /// message to stderr); nil: exit without a word (mpirun still names the rank).
    nonisolated(unsafe) public static var onTimeout: (@Sendable (String) -> Void)?

    /// The exit status of a rank the watchdog stops (EX_TEMPFAIL).
    public static let timeoutStatus: Int32 = 75

    private static let creation = NSLock()
    nonisolated(unsafe) private static var instance: MPIReducer?

    /// The collective in progress (label, start) for the watchdog.
    private let watch = NSLock()
    private var inFlight: (label: String, since: Date)?
    private var watchdog: Thread?

    private init(rank: Int, ranks: Int, timeout: Double, library: String) {
        self.rank = rank
        self.ranks = ranks
        self.timeout = timeout
        transport = "Open MPI (\(library))"
    }

    /// This process's ranks, MPI loaded and initialised on first use.
    public static func shared(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ReducerError) -> MPIReducer {
        creation.lock()
        defer { creation.unlock() }
        if let instance { return instance }
        let library = environment["LORIKEET_MPI_LIBRARY"].flatMap { $0.isEmpty ? nil : $0 } ?? "libmpi.so.40"
        let error = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
        defer { error.deallocate() }
        error.initialize(repeating: 0, count: 512)
        let launched = environment["OMPI_COMM_WORLD_SIZE"].map { " (OMPI_COMM_WORLD_SIZE=\($0))" } ?? ""
        guard lk_mpi_load(library, error, 512) == 0 else {
            throw .unavailable("launched by mpirun\(launched) but Open MPI cannot be used: \(String(cString: error)). "
                               + "Install it (Debian: apt-get install openmpi-bin libopenmpi-dev) or set LORIKEET_MPI_LIBRARY to its libmpi")
        }
        var r: Int32 = 0, n: Int32 = 0
        guard lk_mpi_init(&r, &n, error, 512) == 0 else {
            throw .unavailable("launched by mpirun\(launched) but MPI did not start: \(String(cString: error))")
        }
        var timeout = 600.0
        if let text = environment["LORIKEET_MPI_TIMEOUT"] {
            guard let value = Double(text), value >= 0, value.isFinite else {
                throw .unavailable("LORIKEET_MPI_TIMEOUT=\(text): expected seconds (≥ 0; 0 turns the watchdog off)")
            }
            timeout = value
        }
        let reducer = MPIReducer(rank: Int(r), ranks: Int(n), timeout: timeout, library: library)
        instance = reducer
        return reducer
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) throws(ReducerError) {
        if let failure = collective("MPI_Allreduce (\(label))", { lk_mpi_allreduce_sum_f32(buffer, count, $0, $1) }) { throw failure }
    }

    public func allReduceSum(_ values: inout [Double], label: String) throws(ReducerError) {
        let count = values.count
        let failure = values.withUnsafeMutableBufferPointer { v in
            collective("MPI_Allreduce (\(label))") { lk_mpi_allreduce_sum_f64(v.baseAddress, count, $0, $1) }
        }
        if let failure { throw failure }
    }

    public func broadcast(_ bytes: inout [UInt8], from root: Int, label: String) throws(ReducerError) {
        let count = bytes.count
        let failure = bytes.withUnsafeMutableBytes { b in
            collective("MPI_Bcast (\(label))") { lk_mpi_bcast_bytes(b.baseAddress, count, Int32(root), $0, $1) }
        }
        if let failure { throw failure }
    }

    public func barrier(label: String) throws(ReducerError) {
        if let failure = collective("MPI_Barrier (\(label))", { lk_mpi_barrier($0, $1) }) { throw failure }
    }

    public func setCleanExit(_ clean: Bool) { lk_mpi_set_clean_exit(clean ? 1 : 0) }

    /// Runs one collective under the watchdog; a nonzero status becomes the error returned.
    private func collective(_ label: String, _ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) -> ReducerError? {
        startWatchdog()
        watch.lock()
        inFlight = (label, Date())
        watch.unlock()
        let message = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
        defer { message.deallocate() }
        message.initialize(repeating: 0, count: 512)
        let status = call(message, 512)
        watch.lock()
        inFlight = nil
        watch.unlock()
        return status == 0 ? nil : .failed(rank: rank, operation: label, reason: String(cString: message))
    }

    private func startWatchdog() {
        guard timeout > 0, watchdog == nil else { return }
        let thread = Thread { [unowned self] in
            while true {
                Thread.sleep(forTimeInterval: min(1, self.timeout / 4))
                self.watch.lock()
                let current = self.inFlight
                self.watch.unlock()
                guard let current, Date().timeIntervalSince(current.since) > self.timeout else { continue }
                let message = "rank \(self.rank) of \(self.ranks): \(current.label) waited more than \(Int(self.timeout)) s for the other ranks "
                    + "(one died, hangs or stopped answering); stopping the job (LORIKEET_MPI_TIMEOUT sets the limit)"
                MPIReducer.onTimeout?(message)
                // Not MPI_Abort: this thread is not the one MPI was started for. The launcher sees
                // a rank leave without MPI_Finalize and stops the others.
                _exit(MPIReducer.timeoutStatus)
            }
        }
        thread.name = "lorikeet-mpi-watchdog"
        thread.start()
        watchdog = thread
    }
}
