import Foundation

/// How the processes of one data-parallel run talk: sums over every rank, a barrier, a
/// broadcast. A run of one process uses ``SingleProcess`` (every call is free and changes
/// nothing); `mpirun` runs use ``MPIReducer`` (Open MPI, loaded at run time).
///
/// Every collective must be called by every rank, in the same order, with the same sizes; a
/// rank that skips one leaves the others waiting (until the job is stopped: see
/// ``MPIReducer``'s watchdog). Results are identical on every rank.
public protocol GradientReducer: AnyObject {
    /// This process's rank, 0 ..< `ranks`; rank 0 logs and writes checkpoints.
    var rank: Int { get }
    /// Processes in the run.
    var ranks: Int { get }
    /// What carries the traffic, for logs ("single process", "Open MPI 4.1 …").
    var transport: String { get }

    /// Replaces `buffer[0..<count]` on every rank by the element-wise sum over ranks.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) throws(ReducerError)
    /// The same for a few Doubles (validation sums).
    func allReduceSum(_ values: inout [Double], label: String) throws(ReducerError)
    /// Replaces `bytes` on every rank by `root`'s (same count everywhere).
    func broadcast(_ bytes: inout [UInt8], from root: Int, label: String) throws(ReducerError)
    /// Returns once every rank has called it.
    func barrier(label: String) throws(ReducerError)
    /// Whether leaving the process now ends the job cleanly (`true` once a run has finished on
    /// every rank) or must stop every rank (a run that failed or never finished).
    func setCleanExit(_ clean: Bool)
}

/// A collective that failed, naming the rank and the operation.
public enum ReducerError: Error, CustomStringConvertible, Equatable {
    /// MPI could not be started (library missing, wrong implementation, init failure).
    case unavailable(String)
    /// A collective call returned an error.
    case failed(rank: Int, operation: String, reason: String)
    /// Ranks disagree where they must agree (data, adapter after a step).
    case diverged(rank: Int, what: String)

    public var description: String {
        switch self {
        case .unavailable(let why): return why
        case .failed(let rank, let operation, let reason): return "rank \(rank): \(operation) failed: \(reason)"
        case .diverged(let rank, let what): return "rank \(rank): \(what)"
        }
    }
}

/// One process: sums of one rank are the values themselves.
public final class SingleProcess: GradientReducer {
    public init() {}
    public var rank: Int { 0 }
    public var ranks: Int { 1 }
    public var transport: String { "single process" }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) throws(ReducerError) {}
    public func allReduceSum(_ values: inout [Double], label: String) throws(ReducerError) {}
    public func broadcast(_ bytes: inout [UInt8], from root: Int, label: String) throws(ReducerError) {}
    public func barrier(label: String) throws(ReducerError) {}
    public func setCleanExit(_ clean: Bool) {}
}

/// Picks the reducer for this process from how it was launched.
public enum DataParallel {
    /// Open MPI's `mpirun` sets `OMPI_COMM_WORLD_SIZE` (and `_RANK`) in every process it
    /// starts: then MPI (``MPIReducer/shared()``), else one process and MPI is never loaded.
    public static func reducer(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ReducerError) -> any GradientReducer {
        guard isLaunchedByMPI(environment) else { return SingleProcess() }
        return try MPIReducer.shared(environment: environment)
    }

    /// Whether Open MPI's launcher started this process.
    public static func isLaunchedByMPI(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["OMPI_COMM_WORLD_SIZE"] != nil
    }
}
