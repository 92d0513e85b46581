import CHDF5
import Foundation

/// The contents of one HDF5 file as three name → value maps: Float32 arrays with their shapes,
/// 1-D Int64 arrays, and strings. Names are paths ("adapter/…lora_A.weight"); the groups on
/// the way are created on write. Plain datasets only, so `h5dump` and h5py read every file.
public struct HDF5Archive: Equatable, Sendable {
    /// A row-major Float32 array; `shape == []` is a scalar holding one value.
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
    /// Writes the archive to `path` atomically: HDF5 builds the whole file in memory (its core
    /// driver, no backing store), then our own code writes those bytes to `<path>.partial-<pid>`,
    /// syncs and renames it. A full disk is then an ordinary write error that removes the partial
    /// file: libhdf5 never holds a half-written file open (it crashed at exit when its own flush
    /// had failed), and an existing `path` is never replaced by a broken file.
    public func write(to path: String) throws(FormatError) {
        try validate(path: path)
        try AtomicFile.write(try fileImage(path: path), to: path)
    }

    /// The bytes of the HDF5 file holding this archive, built in memory.
    func fileImage(path: String) throws(FormatError) -> Data {
        _ = lk_H5_silence_errors()
        // One allocation of about the file's size (the driver grows its buffer by this much).
        let payload = floatArrays.values.reduce(0) { $0 + 4 * $1.values.count } + intArrays.values.reduce(0) { $0 + 8 * $1.count }
            + strings.values.reduce(0) { $0 + $1.utf8.count }
        let access = H5Pcreate(lk_H5P_FILE_ACCESS())
        guard access >= 0, H5Pset_fapl_core(access, max(1 << 20, payload + (payload >> 4) + (1 << 18)), false) >= 0 else { throw .io(path: path, reason: "cannot set up HDF5's in-memory file driver") }
        defer { H5Pclose(access) }
        let file = H5Fcreate(path + ".image", lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), access)
        guard file >= 0 else { throw .io(path: path, reason: "cannot create an HDF5 file in memory") }
        var closed = false
        defer { if !closed { H5Fclose(file) } }
        let links = H5Pcreate(lk_H5P_LINK_CREATE())
        guard links >= 0 else { throw .io(path: path, reason: "cannot create a link property list") }
        defer { H5Pclose(links) }
        H5Pset_create_intermediate_group(links, 1)

        /// One dataset of `dims` (`[]` = scalar) from `data`, whose layout matches `type`.
        func dataset(_ name: String, type: hid_t, dims: [Int], _ data: UnsafeRawPointer?) throws(FormatError) {
            var hdims = dims.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &hdims, nil)
            guard space >= 0 else { throw .io(path: path, reason: "dataset '\(name)': cannot create its dataspace") }
            defer { H5Sclose(space) }
            let set = H5Dcreate2(file, name, type, space, links, lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
            guard set >= 0 else { throw .io(path: path, reason: "dataset '\(name)': cannot create it") }
            defer { H5Dclose(set) }
            if dims.reduce(1, *) > 0, H5Dwrite(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), data) < 0 {
                throw .io(path: path, reason: "dataset '\(name)': write failed (disk full?)")
            }
        }
        for name in floatArrays.keys.sorted() {
            guard let a = floatArrays[name] else { continue }
            try a.values.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: lk_H5T_NATIVE_FLOAT(), dims: a.shape, raw.baseAddress) } }.get()
        }
        for name in intArrays.keys.sorted() {
            guard let a = intArrays[name] else { continue }
            try a.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: lk_H5T_NATIVE_INT64(), dims: [a.count], raw.baseAddress) } }.get()
        }
        // Scalar fixed-length UTF-8 strings: h5dump prints their text, h5py reads them as bytes.
        for name in strings.keys.sorted() {
            guard let s = strings[name] else { continue }
            let bytes = Array(s.utf8) + [0]  // [count + 1], NUL-terminated
            let type = H5Tcopy(lk_H5T_C_S1())
            guard type >= 0 else { throw .io(path: path, reason: "dataset '\(name)': cannot create a string type") }
            defer { H5Tclose(type) }
            H5Tset_size(type, bytes.count)
            H5Tset_cset(type, H5T_CSET_UTF8)
            try bytes.withUnsafeBytes { raw in Result { () throws(FormatError) in try dataset(name, type: type, dims: [], raw.baseAddress) } }.get()
        }
        guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw .io(path: path, reason: "cannot flush the in-memory HDF5 file") }
        let size = H5Fget_file_image(file, nil, 0)
        guard size > 0 else { throw .io(path: path, reason: "cannot read back the in-memory HDF5 file") }
        var image = Data(count: size)
        let copied = image.withUnsafeMutableBytes { raw in H5Fget_file_image(file, raw.baseAddress, size) }
        guard copied == size else { throw .io(path: path, reason: "cannot read back the in-memory HDF5 file") }
        closed = true
        guard H5Fclose(file) >= 0 else { throw .io(path: path, reason: "cannot close the in-memory HDF5 file") }
        return image
    }

    /// Rejects what HDF5 would refuse half-way through a write (bad names, a name that is both
    /// a dataset and a group, sizes that disagree), before any file is created.
    func validate(path: String) throws(FormatError) {
        let names = Array(floatArrays.keys) + Array(intArrays.keys) + Array(strings.keys)
        var seen = Set<String>()
        for name in names {
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            guard !name.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw .malformed(path: path, reason: "dataset name '\(name)' is not a path like 'group/name'")
            }
            guard seen.insert(name).inserted else { throw .malformed(path: path, reason: "dataset '\(name)' is given twice, with different types") }
        }
        for name in names {
            var prefix = ""
            for part in name.split(separator: "/").dropLast() {
                prefix += prefix.isEmpty ? String(part) : "/" + part
                if seen.contains(prefix) { throw .malformed(path: path, reason: "'\(prefix)' is both a dataset and the group of '\(name)'") }
            }
        }
        for (name, array) in floatArrays {
            var count = 1
            for d in array.shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow else { count = -1; break }
                count = product
            }
            guard count == array.values.count else {
                throw .malformed(path: path, reason: "dataset '\(name)': shape \(array.shape) does not hold \(array.values.count) values")
            }
        }
        for (name, s) in strings where s.utf8.contains(0) {
            throw .malformed(path: path, reason: "string '\(name)' contains a NUL character, which HDF5 strings cannot hold")
        }
    }

    /// Reads every dataset of the file at `path`, recursively through its groups, by its full
    /// path without the leading "/". Float32 arrays of any rank, 1-D signed 64-bit integer
    /// arrays and scalar strings (fixed- or variable-length) are read; anything else is an error
    /// naming the dataset, so a checkpoint is never half-understood.
    public init(contentsOf path: String) throws(FormatError) {
        _ = lk_H5_silence_errors()
        // Missing and unreadable files get the system's reason, not HDF5's "not HDF5".
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        var status = stat()
        let statted = fstat(fd, &status)
        close(fd)
        guard statted == 0, status.st_mode & 0o170000 == 0o100000 else { throw .io(path: path, reason: "not a regular file") }
        let fileSize = Int(status.st_size)
        guard H5Fis_hdf5(path) > 0 else { throw .malformed(path: path, reason: "not an HDF5 file (or damaged)") }
        try Self.checkStructure(path: path)
        let file = H5Fopen(path, lk_H5F_ACC_RDONLY(), lk_H5P_DEFAULT())
        guard file >= 0 else { throw .malformed(path: path, reason: "HDF5 cannot open it (truncated or damaged?)") }
        defer { H5Fclose(file) }

        // Hard links only: soft and external links point at objects found elsewhere (or nowhere).
        var names: [String] = []
        let visited = withUnsafeMutablePointer(to: &names) { pointer in
            H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, { _, name, info, context in
                guard let name, let info, let context else { return -1 }
                if info.pointee.type == H5L_TYPE_HARD {
                    context.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
                }
                return 0
            }, pointer)
        }
        guard visited >= 0 else { throw .malformed(path: path, reason: "cannot list its contents (truncated or damaged?)") }

        guard names.count <= Self.maxObjects else {
            throw .malformed(path: path, reason: "it holds \(names.count) objects; Lorikeet reads at most \(Self.maxObjects)")
        }
        if let long = names.first(where: { $0.utf8.count > Self.maxNameBytes }) {
            throw .malformed(path: path, reason: "an object name is \(long.utf8.count) bytes long (at most \(Self.maxNameBytes)): '\(long.prefix(80))…'")
        }

        self.init()
        // What all datasets together may claim before anything is allocated: a bigger claim than
        // about 1024× the file is damage (each dataset's storage is then checked exactly).
        var budget = fileSize.multipliedReportingOverflow(by: 1024).partialValue + (64 << 20)
        for name in names {
            let object = H5Oopen(file, name, lk_H5P_DEFAULT())
            guard object >= 0 else { throw .malformed(path: path, reason: "'\(name)' cannot be opened (truncated or damaged?)") }
            defer { H5Oclose(object) }
            guard H5Iget_type(object) == H5I_DATASET else { continue }  // groups, named types
            try read(dataset: object, name: name, path: path, fileSize: fileSize, budget: &budget)
        }
    }

    /// libhdf5 trusts the addresses and lengths in a file's metadata (fuzzing found it copying
    /// from address 0, allocating 16 GiB, reading past a name heap), so the structure it follows
    /// to list and open objects is walked first on the mapped file (`HDF5StructureCheck`).
    static func checkStructure(path: String) throws(FormatError) {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw .io(path: path, reason: "cannot be read")
        }
        let problem: String? = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> String? in
            do throws(HDF5StructureCheck.Problem) {
                try HDF5StructureCheck.check(raw)
                return nil
            } catch {
                return error.reason
            }
        }
        if let problem { throw .malformed(path: path, reason: problem) }
    }

    /// Limits on what a file may claim beyond the size budget: object count, name length and one
    /// string's length (a recipe is kilobytes).
    static let maxObjects = 1 << 20
    static let maxNameBytes = 4096
    static let maxStringBytes = 16 << 20

    /// Where a dataset's bytes are, checked against the file before a read: libhdf5 trusts a
    /// file's layout message when it reads (a damaged contiguous layout made `H5Dread` copy from
    /// address 0 under the fuzzer). Contiguous data (what Lorikeet writes) must be one run of
    /// exactly `bytes` inside the file (`exact`; a variable-length string's references just
    /// inside it), compact data exactly `bytes`; other layouts never get here
    /// (`HDF5StructureCheck` refuses them) and are refused again.
    func checkStorage(_ set: hid_t, name: String, path: String, bytes: Int, exact: Bool, fileSize: Int) throws(FormatError) {
        let plist = H5Dget_create_plist(set)
        guard plist >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': unreadable creation properties") }
        defer { H5Pclose(plist) }
        let layout = H5Pget_layout(plist)
        let stored = Int(exactly: H5Dget_storage_size(set)) ?? Int.max
        let outside = FormatError.malformed(path: path, reason: "dataset '\(name)': its \(bytes) bytes are not inside the \(fileSize)-byte file (truncated or damaged?)")
        switch layout {
        case H5D_CONTIGUOUS:
            guard bytes > 0 else { return }  // an empty dataset has no storage
            let offset = H5Dget_offset(set)
            guard offset != haddr_t.max, let start = Int(exactly: offset), !exact || stored == bytes, start <= fileSize,
                  stored <= fileSize - start else { throw outside }
        case H5D_COMPACT:
            guard exact ? stored == bytes : stored <= fileSize else { throw outside }
        default:
            throw .malformed(path: path, reason: "dataset '\(name)': a layout Lorikeet does not read (\(layout.rawValue))")
        }
    }

    /// Reads one open dataset into the map its type belongs to.
    mutating func read(dataset set: hid_t, name: String, path: String, fileSize: Int, budget: inout Int) throws(FormatError) {
        let type = H5Dget_type(set), space = H5Dget_space(set)
        defer { H5Tclose(type); H5Sclose(space) }
        guard type >= 0, space >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': unreadable type or dataspace") }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0 else { throw .malformed(path: path, reason: "dataset '\(name)': unreadable dataspace") }
        var hdims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &hdims, nil)
        var dims: [Int] = [], count = 1
        let elementSize = max(H5Tget_size(type), 1)
        for d in hdims {
            guard let d = Int(exactly: d) else { throw .malformed(path: path, reason: "dataset '\(name)': absurd size \(hdims)") }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            // Even compressed data cannot shrink a thousandfold; a bigger claim is damage.
            guard !overflow, product <= (fileSize * 1024 + (64 << 20)) / elementSize else {
                throw .malformed(path: path, reason: "dataset '\(name)': absurd size \(hdims) for a \(fileSize)-byte file")
            }
            dims.append(d)
            count = product
        }
        // A fixed-length string's one element is its whole length.
        if H5Tget_class(type) == H5T_STRING, H5Tis_variable_str(type) <= 0, elementSize > Self.maxStringBytes {
            throw .malformed(path: path, reason: "dataset '\(name)': a string of \(elementSize) bytes (at most \(Self.maxStringBytes))")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: elementSize)
        budget -= overflow ? Int.max : bytes
        guard budget >= 0 else {
            throw .malformed(path: path, reason: "dataset '\(name)' \(hdims) takes the datasets past what a \(fileSize)-byte file can hold")
        }
        // Variable-length strings store references to a global heap, not `bytes` bytes.
        let variable = H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0
        try checkStorage(set, name: name, path: path, bytes: overflow ? Int.max : bytes, exact: !variable, fileSize: fileSize)
        let failed = FormatError.malformed(path: path, reason: "dataset '\(name)': read failed (truncated or damaged?)")
        switch H5Tget_class(type) {
        case H5T_FLOAT where H5Tget_size(type) == 4:
            var values = [Float](repeating: 0, count: count)  // [product of dims], row-major
            let status = values.withUnsafeMutableBytes { H5Dread(set, lk_H5T_NATIVE_FLOAT(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }
            guard count == 0 || status >= 0 else { throw failed }
            floatArrays[name] = FloatArray(shape: dims, values: values)
        case H5T_INTEGER where H5Tget_size(type) == 8 && H5Tget_sign(type) == H5T_SGN_2 && rank == 1:
            var values = [Int64](repeating: 0, count: count)  // [dims[0]]
            let status = values.withUnsafeMutableBytes { H5Dread(set, lk_H5T_NATIVE_INT64(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }
            guard count == 0 || status >= 0 else { throw failed }
            intArrays[name] = values
        case H5T_STRING where count == 1:
            guard let text = readString(set, type: type, space: space) else { throw failed }
            guard text.utf8.count <= Self.maxStringBytes else {
                throw .malformed(path: path, reason: "dataset '\(name)': a string of \(text.utf8.count) bytes (at most \(Self.maxStringBytes))")
            }
            strings[name] = text
        default:
            throw .malformed(path: path, reason: "dataset '\(name)' has a type or shape Lorikeet does not read (Float32 arrays, 1-D signed Int64 arrays and single strings only)")
        }
    }

    /// The one string in a dataset of string type `type`, fixed- or variable-length; nil if the
    /// read fails. Fixed-length padding (NULs, or spaces for SPACEPAD) is not part of the text.
    func readString(_ set: hid_t, type: hid_t, space: hid_t) -> String? {
        if H5Tis_variable_str(type) > 0 {
            let memory = H5Tcopy(lk_H5T_C_S1())
            defer { H5Tclose(memory) }
            guard memory >= 0, H5Tset_size(memory, lk_H5T_VARIABLE()) >= 0, H5Tset_cset(memory, H5Tget_cset(type)) >= 0 else { return nil }
            var pointer: UnsafeMutablePointer<CChar>? = nil  // [1]: HDF5 allocates the text
            guard H5Dread(set, memory, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), &pointer) >= 0 else { return nil }
            defer { H5Dvlen_reclaim(memory, space, lk_H5P_DEFAULT(), &pointer) }
            guard let pointer else { return "" }
            return String(decoding: UnsafeBufferPointer(start: pointer, count: strlen(pointer)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var bytes = [UInt8](repeating: 0, count: H5Tget_size(type))  // [size]
        guard bytes.withUnsafeMutableBytes({ H5Dread(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), $0.baseAddress) }) >= 0 else { return nil }
        var text = bytes.prefix { $0 != 0 }
        if H5Tget_strpad(type) == H5T_STR_SPACEPAD { while text.last == UInt8(ascii: " ") { text.removeLast() } }
        return String(decoding: text, as: UTF8.self)
    }
}
