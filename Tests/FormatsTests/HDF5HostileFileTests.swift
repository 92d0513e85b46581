import CHDF5
import Formats
import Foundation
import XCTest

/// Files crafted with the HDF5 C API, as a stranger could make them, that claim more than they
/// hold: each is refused by name before Lorikeet allocates what it claims.
final class HDF5HostileFileTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        _ = lk_H5_silence_errors()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-h5-hostile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A file of datasets created but never written: `dims` per dataset, contiguous (libhdf5
    /// allocates their storage at the first write, so the file stays tiny whatever it claims).
    func craft(_ name: String, datasets: [(name: String, type: hid_t, dims: [UInt64])]) throws -> String {
        let path = directory + "/" + name
        let file = H5Fcreate(path, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(file, 0)
        let links = H5Pcreate(lk_H5P_LINK_CREATE())
        H5Pset_create_intermediate_group(links, 1)
        defer { H5Pclose(links) }
        for d in datasets {
            var dims = d.dims.map { hsize_t($0) }
            let space = dims.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
            let set = H5Dcreate2(file, d.name, d.type, space, links, lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
            guard set >= 0 else { throw XCTSkip("this libhdf5 refuses to create \(d.dims) (\(d.name))") }
            H5Dclose(set); H5Sclose(space)
        }
        H5Fclose(file)
        return path
    }

    func assertRefused(_ path: String, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try HDF5Archive(contentsOf: path), file: file, line: line) { error in
            guard case FormatError.malformed = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue("\(error)".hasPrefix(path) && "\(error)".contains(words), "\(error) should name \(words)", file: file, line: line)
        }
    }

    func testAbsurdShapesAreRefused() throws {
        let float = lk_H5T_NATIVE_FLOAT()
        // 2^40 floats (4 TiB) in a file of a few kilobytes.
        assertRefused(try craft("huge.h5", datasets: [("adapter/x", float, [1 << 40])]), "'adapter/x': absurd size")
        // A shape whose product overflows 64 bits.
        assertRefused(try craft("overflow.h5", datasets: [("adapter/y", float, [1 << 40, 1 << 40])]), "'adapter/y': absurd size")
    }

    func testDatasetsCannotClaimMoreThanTheFileHolds() throws {
        // A 40 MB claim is under the size bound, but its contiguous storage is not in the file.
        let datasets = (0..<10).map { (name: "metrics/m\($0)", type: lk_H5T_NATIVE_FLOAT(), dims: [UInt64(10_000_000)]) }
        assertRefused(try craft("many.h5", datasets: datasets), "'metrics/m0': its 40000000 bytes are not inside the")
    }

    func testHugeStringsAndNamesAreRefused() throws {
        let string = H5Tcopy(lk_H5T_C_S1())
        defer { H5Tclose(string) }
        H5Tset_size(string, 1 << 30)  // one 1 GiB fixed-length string, never written
        assertRefused(try craft("string.h5", datasets: [("recipe", string, [])]), "'recipe': a string of 1073741824 bytes")
        let long = String(repeating: "n", count: 5_000)
        assertRefused(try craft("name.h5", datasets: [(long, lk_H5T_NATIVE_FLOAT(), [1])]), "makes an object path over 4096 bytes long")
    }

    /// Found by scripts/fuzz.sh checkpoint: an object header whose size field asks libhdf5 for
    /// about a terabyte. libhdf5's allocation fails and the file is refused by path.
    func testFuzzFoundTerabyteHeaderIsRefused() throws {
        assertFuzzFindingRefused("hdf5-terabyte-object-header")
    }

    /// Found by scripts/fuzz.sh checkpoint (its first minute this session): an int64 dataset
    /// whose contiguous layout libhdf5 read from address 0 (a segfault inside `H5Dread`). The
    /// layout is now checked against the file before any read.
    func testFuzzFoundContiguousLayoutOutsideTheFileIsRefused() throws {
        assertFuzzFindingRefused("hdf5-contiguous-layout-past-data", naming: "dataset '")
    }

    /// Found by scripts/fuzz.sh checkpoint: a local heap whose header claims 16 GiB, which
    /// libhdf5 mallocs while listing the file's links. Refused by path before libhdf5 opens it.
    func testFuzzFoundSixteenGigabyteHeapIsRefused() throws {
        let start = Date()
        assertFuzzFindingRefused("hdf5-16gib-local-heap")
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    /// Found by scripts/fuzz.sh checkpoint: a local heap whose data segment address is
    /// undefined, which libhdf5 read from address 0 while listing links (a segfault, also
    /// outside the fuzzer). Local heaps are now checked before libhdf5 opens the file.
    func testFuzzFoundLocalHeapAtAnUndefinedAddressIsRefused() throws {
        assertFuzzFindingRefused("hdf5-local-heap-at-undefined-address", naming: "the local heap at byte 680 claims")
    }

    /// Found by scripts/fuzz.sh checkpoint after that fix: a local heap whose data starts 8
    /// bytes before its own header, which also ended in a copy from address 0.
    func testFuzzFoundLocalHeapOverItsOwnHeaderIsRefused() throws {
        assertFuzzFindingRefused("hdf5-local-heap-over-its-header", naming: "local heap at byte")
    }

    /// Found by scripts/fuzz.sh checkpoint on the reader that checked heap headers only: a symbol
    /// table entry whose name has no NUL before its heap's end, which libhdf5 `strdup`s past the
    /// heap (an AddressSanitizer heap-buffer-overflow in `H5G__ent_to_link`). The whole group
    /// structure is now walked before libhdf5 opens a file (`HDF5StructureCheck`).
    func testFuzzFoundLinkNamePastItsHeapIsRefused() throws {
        assertFuzzFindingRefused("hdf5-link-name-past-its-heap", naming: "names a string at offset")
    }

    /// Found by scripts/fuzz.sh checkpoint beside that one: a chunked layout of 0 dimensions,
    /// which libhdf5 divides by when it opens the dataset (SIGFPE in `H5D__chunk_set_info`).
    /// Chunked layouts are now refused in the walk (Lorikeet writes contiguous ones).
    func testFuzzFoundZeroChunkDimensionIsRefused() throws {
        assertFuzzFindingRefused("hdf5-chunk-dimension-zero", naming: "has a chunked layout; Lorikeet reads contiguous")
    }

    /// Found by scripts/fuzz.sh checkpoint on the walk: two local heaps naming one data segment.
    /// libhdf5 caches a segment by address, so the second heap had no data and its names were
    /// read from address 8 (a segfault). A data segment may belong to one heap only.
    func testFuzzFoundTwoHeapsSharingOneDataSegmentAreRefused() throws {
        assertFuzzFindingRefused("hdf5-two-heaps-one-data-segment", naming: "share their data")
    }

    /// Found by scripts/fuzz.sh checkpoint on the walk: a dataset message flagged as shared in
    /// a file with no shared-message table; libhdf5 looked the table up at an undefined address
    /// and copied from address 0 in `H5SM_get_fheap_addr`. Shared messages are refused (Lorikeet
    /// writes none), and so is every message type a checkpoint does not hold.
    func testFuzzFoundSharedMessageIsRefused() throws {
        assertFuzzFindingRefused("hdf5-shared-message-without-table", naming: "has a shared message of type")
    }

    /// Found by the hour of scripts/fuzz.sh checkpoint on the walk: a second group header
    /// holding the root's own B-tree and heap, so that listing the root lists it again inside
    /// itself. H5Lvisit built ever longer paths (4 GB in 53 s under the fuzzer; a stack overflow
    /// in a debug build), since libhdf5 tracks visited objects only when their link count is
    /// over 1. A group's contents now belong to one header, each header has one link, groups
    /// nest at most 64 deep and all paths take at most 64 MiB.
    func testFuzzFoundGroupListingItselfIsRefused() throws {
        assertFuzzFindingRefused("hdf5-group-listing-itself", naming: "hold the same group (B-tree at byte 136)")
    }

    /// Found at 47 minutes into the next hour of scripts/fuzz.sh checkpoint (2.7 million inputs
    /// on that reader): a symbol table entry turned into a soft link whose value is the empty
    /// string, that is its own group; H5Lvisit followed it without end (4 GB under the fuzzer,
    /// 5.9 GB and a crash outside it). Soft links are refused: Lorikeet writes none.
    func testFuzzFoundSoftLinkToItsOwnGroupIsRefused() throws {
        assertFuzzFindingRefused("hdf5-soft-link-to-its-own-group", naming: "is a soft link")
    }

    /// A file under Fixtures/fuzz is refused with an error that starts with its path (and names `words`).
    func assertFuzzFindingRefused(_ name: String, naming words: String = "", file: StaticString = #filePath, line: UInt = #line) {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fuzz/" + name).path
        XCTAssertThrowsError(try HDF5Archive(contentsOf: path), file: file, line: line) { error in
            XCTAssertTrue("\(error)".hasPrefix(path) && (words.isEmpty || "\(error)".contains(words)), "\(error)", file: file, line: line)
        }
    }

    func testAStringJustUnderTheLimitIsRead() throws {
        let path = directory + "/ok.h5"
        var archive = HDF5Archive()
        archive.strings["recipe"] = String(repeating: "r", count: 1 << 20)
        archive.floatArrays["metrics/loss"] = .init(shape: [3], values: [1, 2, 3])
        try archive.write(to: path)
        XCTAssertEqual(try HDF5Archive(contentsOf: path), archive)
    }
}
