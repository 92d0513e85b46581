import Formats
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension MappedFileRegion {
    /// Drops this process's pages of [offset, offset + length) (widened to whole pages): a
    /// sequential pass over a mapping then leaves none of it resident. Safe on this read-only
    /// private mapping, which is never written: a page touched again is read back from the file.
    func releasePages(offset: Int, length: Int) {
        guard let base = bytes.baseAddress, length > 0, offset >= 0, offset < count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let from = offset / page * page, to = min(count, offset + length)
        _ = madvise(UnsafeMutableRawPointer(mutating: base + from), to - from, MADV_DONTNEED)
    }

    /// Releases the `passBytes`·2 bytes before `offset`: called every `passBytes` of a
    /// sequential pass, the overlap drops again what the kernel mapped back around the last
    /// fault after the previous call (fault-around maps up to 64 KiB of neighbours).
    func releasePages(behind offset: Int, passBytes: Int = TokenizedFile.passBytes) {
        let from = max(0, offset - 2 * passBytes)
        releasePages(offset: from, length: offset - from)
    }
}
