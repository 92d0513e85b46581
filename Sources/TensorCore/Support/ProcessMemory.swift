#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resident-set figures of this process. Every benchmark and the training progress line
/// report peak memory, so it lives beside the engine.
public enum ProcessMemory {
    /// Peak resident set size in bytes (getrusage's ru_maxrss).
    public static var peakResidentBytes: Int? {
        var usage = rusage()
        #if os(Linux)
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss) * 1024  // KiB on Linux
        #else
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss)         // bytes on Darwin
        #endif
    }

    /// Current resident set size in bytes, from /proc/self/statm (Linux; nil elsewhere).
    /// Read with stdio: /proc files report size 0, which defeats read-by-stat-size helpers.
    public static var residentBytes: Int? {
        guard let file = fopen("/proc/self/statm", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
