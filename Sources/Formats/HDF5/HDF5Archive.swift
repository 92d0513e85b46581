import CHDF5
import Foundation

/// The contents of one HDF5 file as three name → value maps: Float32 arrays with their shapes,
/// 1-D Int64 arrays, and strings. Names are paths ("adapter/…lora_A.weight"); the groups on
/// the way are created on write. Plain datasets only, so `h5dump` and h5py read every file.
public struct HDF5Archive: Equatable, Sendable {
    public struct FloatArray: Equatable, Sendable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
        /// Bitwise equality (NaN payloads and −0 included): checkpoints must round-trip exactly.
        public static func == (a: Self, b: Self) -> Bool {
            a.shape == b.shape && a.values.count == b.values.count && zip(a.values, b.values).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
    }

    public var floatArrays: [String: FloatArray] = [:]
    public var intArrays: [String: [Int64]] = [:]
    public var strings: [String: String] = [:]

    public init() {}
}

extension HDF5Archive {
    /// Writes the archive to `path` atomically: into `<path>.partial-<pid>`, flushed and
    /// closed, then renamed over `path`. On any failure the partial file is removed and an
    /// existing `path` is untouched, so a crash never leaves a broken file under the real name.
    public func write(to path: String) throws(FormatError) {
        for (name, array) in floatArrays where array.shape.reduce(1, *) != array.values.count || array.shape.contains(where: { $0 < 0 }) {
            throw .malformed(path: path, reason: "dataset '\(name)': shape \(array.shape) does not hold \(array.values.count) values")
        }
        _ = lk_H5_silence_errors()
        let partial = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        let file = H5Fcreate(partial, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        guard file >= 0 else { throw .io(path: path, reason: "cannot create \(partial) (does the folder exist and is it writable?)") }
        var closed = false
        defer { if !closed { H5Fclose(file); unlink(partial) } }
        let links = H5Pcreate(lk_H5P_LINK_CREATE())
        defer { H5Pclose(links) }
        H5Pset_create_intermediate_group(links, 1)

        func dataset(_ name: String, type: hid_t, dims: [Int], _ data: UnsafeRawPointer?) throws(FormatError) {
            var hdims = dims.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &hdims, nil)
            guard space >= 0 else { throw .io(path: path, reason: "dataset '\(name)': cannot create its dataspace") }
            defer { H5Sclose(space) }
            let set = H5Dcreate2(file, name, type, space, links, lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
            guard set >= 0 else { throw .io(path: path, reason: "dataset '\(name)': cannot create it (a name used twice, or as a group?)") }
            defer { H5Dclose(set) }
            if dims.reduce(1, *) > 0, H5Dwrite(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), data) < 0 {
                throw .io(path: path, reason: "dataset '\(name)': write failed (disk full?)")
            }
        }
        for name in floatArrays.keys.sorted() {
            guard let a = floatArrays[name] else { continue }
            let result = a.values.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: lk_H5T_NATIVE_FLOAT(), dims: a.shape, raw.baseAddress) } }
            try result.get()
        }
        for name in intArrays.keys.sorted() {
            guard let a = intArrays[name] else { continue }
            let result = a.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: lk_H5T_NATIVE_INT64(), dims: [a.count], raw.baseAddress) } }
            try result.get()
        }
        for name in strings.keys.sorted() {
            guard let s = strings[name] else { continue }
            var bytes = Array(s.utf8)
            bytes.append(0)
            let type = H5Tcopy(lk_H5T_C_S1())
            defer { H5Tclose(type) }
            H5Tset_size(type, bytes.count)
            H5Tset_cset(type, H5T_CSET_UTF8)
            let result = bytes.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: type, dims: [], raw.baseAddress) } }
            try result.get()
        }
        guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw .io(path: path, reason: "flush failed") }
        closed = true
        guard H5Fclose(file) >= 0 else { unlink(partial); throw .io(path: path, reason: "close failed (disk full?)") }
        guard rename(partial, path) == 0 else {
            unlink(partial)
            throw .io(path: path, reason: "cannot rename \(partial) into place (\(String(cString: strerror(errno))))")
        }
    }

    /// Reads every dataset of the file at `path`, recursively through its groups.
    public init(contentsOf path: String) throws(FormatError) {
        _ = lk_H5_silence_errors()
        guard FileManager.default.fileExists(atPath: path) else { throw .io(path: path, reason: "no such file") }
        guard H5Fis_hdf5(path) > 0 else { throw .malformed(path: path, reason: "not an HDF5 file (or damaged)") }
        let file = H5Fopen(path, lk_H5F_ACC_RDONLY(), lk_H5P_DEFAULT())
        guard file >= 0 else { throw .malformed(path: path, reason: "HDF5 cannot open it (truncated or damaged?)") }
        defer { H5Fclose(file) }

        final class Names { var all: [String] = [] }
        let names = Names()
        let visited = withUnsafeMutablePointer(to: &names.all) { pointer in
            H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, { _, name, _, context in
                guard let name, let context else { return -1 }
                context.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
                return 0
            }, pointer)
        }
        guard visited >= 0 else { throw .malformed(path: path, reason: "cannot list its contents (truncated or damaged?)") }

        self.init()
        for name in names.all {
            let set = H5Dopen2(file, name, lk_H5P_DEFAULT())
            if set < 0 { continue }  // a group
            defer { H5Dclose(set) }
            let type = H5Dget_type(set), space = H5Dget_space(set)
            defer { H5Tclose(type); H5Sclose(space) }
            let rank = Int(H5Sget_simple_extent_ndims(space))
            guard rank >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': unreadable dataspace") }
            var hdims = [hsize_t](repeating: 0, count: rank)
            H5Sget_simple_extent_dims(space, &hdims, nil)
            let dims = hdims.map { Int($0) }
            var count = 1
            for d in dims {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= 1 << 34 else { throw .malformed(path: path, reason: "dataset '\(name)': absurd size \(dims)") }
                count = product
            }
            let typeClass = H5Tget_class(type), size = H5Tget_size(type)
            switch typeClass {
            case H5T_FLOAT where size == 4:
                var values = [Float](repeating: 0, count: count)
                let status = values.withUnsafeMutableBytes { H5Dread(set, lk_H5T_NATIVE_FLOAT(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }
                guard count == 0 || status >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': read failed (truncated file?)") }
                floatArrays[name] = FloatArray(shape: dims, values: values)
            case H5T_INTEGER where size == 8 && rank == 1:
                var values = [Int64](repeating: 0, count: count)
                let status = values.withUnsafeMutableBytes { H5Dread(set, lk_H5T_NATIVE_INT64(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }
                guard count == 0 || status >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': read failed (truncated file?)") }
                intArrays[name] = values
            case H5T_STRING where rank == 0 && H5Tis_variable_str(type) == 0:
                var bytes = [UInt8](repeating: 0, count: size)
                let status = bytes.withUnsafeMutableBytes { H5Dread(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }
                guard status >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': read failed (truncated file?)") }
                strings[name] = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            default:
                throw .malformed(path: path, reason: "dataset '\(name)' has a type Lorikeet does not read (Float32 arrays, 1-D Int64 arrays and fixed-length strings only)")
            }
        }
    }
}
