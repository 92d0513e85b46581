import CHDF5
import Formats
import Foundation
import XCTest

/// The walk over a file's groups and headers that runs before libhdf5 opens it: every file
/// Lorikeet writes passes (deep B-trees and nested groups included), and a file with one field
/// changed in one structure is refused with words that name that structure.
final class HDF5StructureCheckTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        _ = lk_H5_silence_errors()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-h5-walk-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// 300 datasets in one group need more symbol table nodes than one B-tree node holds
    /// (2·K = 32 children), so the root's B-tree has a level-1 node; nested groups, strings
    /// and integers beside them.
    func testEveryStructureLorikeetWritesPassesAndReadsBack() throws {
        var archive = HDF5Archive()
        for i in 0..<300 { archive.floatArrays[String(format: "adapter/layer%03d.weight", i)] = .init(shape: [2], values: [Float(i), -1]) }
        archive.floatArrays["a/b/c/d/deep"] = .init(shape: [], values: [7])
        archive.intArrays["optimizer/step"] = [42]
        archive.strings["recipe"] = "lora:\n  rank: 8\n"
        let path = directory + "/many.h5"
        try archive.write(to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertTrue(offsets(of: "TREE", in: bytes).contains { bytes[$0 + 5] == 1 }, "the file should hold a level-1 group B-tree node")
        XCTAssertEqual(try HDF5Archive(contentsOf: path), archive)
    }

    /// A small file (three datasets in the root group, one in a subgroup) to damage one field at a time.
    func smallFile() throws -> [UInt8] {
        var archive = HDF5Archive()
        archive.floatArrays["w"] = .init(shape: [2], values: [1, 2])
        archive.floatArrays["group/v"] = .init(shape: [1], values: [3])
        archive.intArrays["step"] = [5]
        let path = directory + "/small.h5"
        try archive.write(to: path)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testTheUndamagedSmallFileIsRead() throws {
        let path = try write(try smallFile(), "undamaged.h5")
        XCTAssertEqual(try HDF5Archive(contentsOf: path).floatArrays["group/v"]?.values, [3])
    }

    func testALinkNameOutsideItsHeapIsRefused() throws {
        var bytes = try smallFile()
        let node = try XCTUnwrap(offsets(of: "SNOD", in: bytes).first)
        put(&bytes, at: node + 8, 8, 1 << 20)  // entry 0's name offset
        assertRefused(try write(bytes, "name.h5"), "entry 0 of the symbol table node at byte \(node) names a string at offset 1048576")
    }

    func testABTreeKeyOutsideItsHeapIsRefused() throws {
        var bytes = try smallFile()
        let node = try XCTUnwrap(offsets(of: "TREE", in: bytes).first)
        put(&bytes, at: node + 8 + 16, 8, 1 << 40)  // key 0, after the two sibling addresses
        assertRefused(try write(bytes, "key.h5"), "key 0 of the group B-tree node at byte \(node)")
    }

    func testAHeapWithoutNulAfterANameIsRefused() throws {
        var bytes = try smallFile()
        let heap = try XCTUnwrap(offsets(of: "HEAP", in: bytes).first)
        let size = Int(field(bytes, heap + 8, 8)), data = Int(field(bytes, heap + 24, 8))
        for i in data..<(data + size) where bytes[i] == 0 { bytes[i] = 0x41 }  // no string ends
        put(&bytes, at: heap + 16, 8, 1)  // and no free list to read through the letters
        assertRefused(try write(bytes, "nul.h5"), "that does not end inside the \(size)-byte local heap at byte \(heap)")
    }

    func testALoopingHeapFreeListIsRefused() throws {
        var bytes = try smallFile()
        let heap = try XCTUnwrap(offsets(of: "HEAP", in: bytes).first)
        let size = Int(field(bytes, heap + 8, 8)), data = Int(field(bytes, heap + 24, 8))
        let block = size - 16  // a free block at the data's end that names itself as the next
        put(&bytes, at: heap + 16, 8, UInt64(block))
        put(&bytes, at: data + block, 8, UInt64(block))
        put(&bytes, at: data + block + 8, 8, 16)
        assertRefused(try write(bytes, "freelist.h5"), "the free list of the local heap at byte \(heap)")
    }

    func testTwoHeapsSharingTheirDataAreRefused() throws {
        var bytes = try smallFile()
        let heaps = offsets(of: "HEAP", in: bytes)
        XCTAssertEqual(heaps.count, 2)  // the root group's and 'group''s
        let first = heaps[0], second = heaps[1]
        put(&bytes, at: second + 24, 8, field(bytes, first + 24, 8))  // the second names the first's data
        put(&bytes, at: second + 8, 8, min(field(bytes, first + 8, 8), field(bytes, second + 8, 8)))
        assertRefused(try write(bytes, "shared.h5"), "share their data at byte \(field(bytes, first + 24, 8))")
    }

    func testAHeapLargerThanTheFileIsRefused() throws {
        var bytes = try smallFile()
        let heap = try XCTUnwrap(offsets(of: "HEAP", in: bytes).first)
        put(&bytes, at: heap + 8, 8, 1 << 34)
        assertRefused(try write(bytes, "heap.h5"), "local heap at byte \(heap) claims 17179869184 bytes")
    }

    func testASymbolTableNodeWithTooManyEntriesIsRefused() throws {
        var bytes = try smallFile()
        let node = try XCTUnwrap(offsets(of: "SNOD", in: bytes).first)
        put(&bytes, at: node + 6, 2, 9)  // leaf K is 4: at most 8
        assertRefused(try write(bytes, "entries.h5"), "the symbol table node at byte \(node) lists 9 entries (at most 8)")
    }

    func testABTreeNodeWhoseChildIsItselfIsRefused() throws {
        var bytes = try smallFile()
        let node = try XCTUnwrap(offsets(of: "TREE", in: bytes).first)
        bytes[node + 5] = 1  // level 1: its children must be level-0 B-tree nodes
        put(&bytes, at: node + 8 + 16 + 8, 8, UInt64(node))  // child 0: itself
        assertRefused(try write(bytes, "cycle.h5"), "the group B-tree node at byte \(node) is reached twice in one group")
    }

    func testAnObjectHeaderOutsideTheFileIsRefused() throws {
        var bytes = try smallFile()
        let node = try XCTUnwrap(offsets(of: "SNOD", in: bytes).first)
        put(&bytes, at: node + 8 + 8, 8, UInt64(bytes.count - 8))  // entry 0's header: 8 bytes before the end
        assertRefused(try write(bytes, "header.h5"), "an object header claims 16 bytes at address \(bytes.count - 8)")
    }

    func testAMessageRunningPastItsChunkIsRefused() throws {
        var bytes = try smallFile()
        let root = Int(field(bytes, 24 + 4 * 8 + 8, 8))  // the root entry's object header address
        put(&bytes, at: root + 16 + 2, 2, 0xFFF8)  // its first message's size
        assertRefused(try write(bytes, "message.h5"), "the object header at byte \(root) has a message of 65528 bytes")
    }

    func testAContinuationOutsideTheFileIsRefused() throws {
        var bytes = try smallFile()
        let root = Int(field(bytes, 24 + 4 * 8 + 8, 8))
        put(&bytes, at: root + 16, 2, 0x10)  // its first message becomes a continuation…
        put(&bytes, at: root + 16 + 8, 8, 1 << 33)  // …to an address past the end
        assertRefused(try write(bytes, "continuation.h5"), "a continuation of the object header at byte \(root)")
    }

    /// A chunked dataset (as h5py writes a compressed one) is refused by name: Lorikeet never
    /// writes one, and reading it runs libhdf5's chunk index and filters.
    func testChunkedDatasetsAreRefusedByName() throws {
        let path = directory + "/chunked.h5"
        let file = H5Fcreate(path, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        var dims: [hsize_t] = [6], chunk: [hsize_t] = [3]
        let space = H5Screate_simple(1, &dims, nil), properties = H5Pcreate(lk_H5P_DATASET_CREATE())
        XCTAssertGreaterThanOrEqual(H5Pset_chunk(properties, 1, &chunk), 0)
        let set = H5Dcreate2(file, "w", lk_H5T_NATIVE_FLOAT(), space, lk_H5P_DEFAULT(), properties, lk_H5P_DEFAULT())
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertGreaterThanOrEqual(H5Dwrite(set, lk_H5T_NATIVE_FLOAT(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), values), 0)
        H5Dclose(set); H5Pclose(properties); H5Sclose(space); H5Fclose(file)
        assertRefused(path, "has a chunked layout; Lorikeet reads contiguous and compact datasets")
    }

    /// Message types outside what a checkpoint holds are refused before libhdf5 decodes them.
    func testMessagesLorikeetDoesNotReadAreRefused() throws {
        var bytes = try smallFile()
        let root = Int(field(bytes, 24 + 4 * 8 + 8, 8))
        put(&bytes, at: root + 16, 2, 0x0B)  // the root's first message becomes a filter pipeline
        assertRefused(try write(bytes, "filters.h5"), "the object header at byte \(root) has a message of type 11, which Lorikeet does not read")
    }

    /// A variable-length string (h5py's `str`) reads; its global heap reference and collection
    /// are checked before libhdf5 follows them.
    func testVariableLengthStringReferencesAreChecked() throws {
        let path = directory + "/vlen.h5"
        let file = H5Fcreate(path, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        let type = H5Tcopy(lk_H5T_C_S1())
        H5Tset_size(type, lk_H5T_VARIABLE())
        let space = H5Screate(H5S_SCALAR)
        let set = H5Dcreate2(file, "recipe", type, space, lk_H5P_DEFAULT(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        try "lora: {rank: 8}".withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            XCTAssertGreaterThanOrEqual(H5Dwrite(set, type, lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), &pointer), 0)
            H5Dclose(set); H5Sclose(space); H5Tclose(type); H5Fclose(file)
            XCTAssertEqual(try HDF5Archive(contentsOf: path).strings["recipe"], String(cString: text))
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let collection = try XCTUnwrap(offsets(of: "GCOL", in: bytes).first)
        let object = collection + 16  // the first object: index, reference count, reserved, size
        XCTAssertEqual(field(bytes, object, 2), 1)
        XCTAssertEqual(field(bytes, object + 8, 8), 15)

        var renumbered = bytes
        put(&renumbered, at: object, 2, 7)  // the dataset still refers to object 1
        assertRefused(try write(renumbered, "index.h5"), "refers to object 1 of the global heap at byte \(collection) for 15 bytes")
        var overlong = bytes
        put(&overlong, at: object + 8, 8, 1 << 30)
        assertRefused(try write(overlong, "size.h5"), "object 1 of the global heap collection at byte \(collection) runs past its end")
        var shortened = bytes
        put(&shortened, at: object + 8, 8, 9)  // padded to 16 as before, but shorter than the 15 bytes the reference reads
        assertRefused(try write(shortened, "short.h5"), "for 15 bytes, which it does not hold")
    }

    func testAContinuationBackToItsOwnChunkIsRefused() throws {
        var bytes = try smallFile()
        let root = Int(field(bytes, 24 + 4 * 8 + 8, 8))
        put(&bytes, at: root + 16, 2, 0x10)  // its first message becomes a continuation…
        put(&bytes, at: root + 16 + 8, 8, UInt64(root + 16))  // …to the chunk it stands in
        put(&bytes, at: root + 16 + 16, 8, field(bytes, root + 8, 4))
        assertRefused(try write(bytes, "loop.h5"), "the object header at byte \(root) continues twice at byte \(root + 16)")
    }

    func testAGroupLinkedIntoItselfIsRefused() throws {
        var bytes = try smallFile()
        let root = field(bytes, 24 + 4 * 8 + 8, 8)
        let node = try XCTUnwrap(offsets(of: "SNOD", in: bytes).first)
        put(&bytes, at: node + 8 + 8, 8, root)  // entry 0 now names the root group again
        assertRefused(try write(bytes, "loop.h5"), "the object header at byte \(root) is named by a second link")
    }

    /// A soft link (h5py's `f["b"] = h5py.SoftLink("/a")`) is refused by name.
    func testSoftLinksAreRefused() throws {
        let path = directory + "/soft.h5"
        var archive = HDF5Archive()
        archive.floatArrays["a"] = .init(shape: [1], values: [1])
        try archive.write(to: path)
        let file = H5Fopen(path, lk_H5F_ACC_RDWR(), lk_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(H5Lcreate_soft("/a", file, "b", lk_H5P_DEFAULT(), lk_H5P_DEFAULT()), 0)
        H5Fclose(file)
        assertRefused(path, "is a soft link (Lorikeet writes none")
    }

    func testGroupsNestAtMostSixtyFourDeep() throws {
        var archive = HDF5Archive()
        archive.floatArrays[Array(repeating: "g", count: 63).joined(separator: "/") + "/w"] = .init(shape: [1], values: [1])
        try archive.write(to: directory + "/deep.h5")
        XCTAssertEqual(try HDF5Archive(contentsOf: directory + "/deep.h5"), archive)
        archive.floatArrays = [Array(repeating: "g", count: 64).joined(separator: "/") + "/w": .init(shape: [1], values: [1])]
        try archive.write(to: directory + "/deeper.h5")
        assertRefused(directory + "/deeper.h5", "its groups nest more than 64 deep")
    }

    func testSuperblocksLorikeetDoesNotWriteAreRefusedByName() throws {
        var version2 = try smallFile()
        version2[8] = 2
        assertRefused(try write(version2, "v2.h5"), "superblock is version 2")
        var based = try smallFile()
        put(&based, at: 24, 8, 512)
        assertRefused(try write(based, "base.h5"), "base address of 512")
    }

    // MARK: - Helpers

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func offsets(of signature: String, in bytes: [UInt8]) -> [Int] {
        let s = Array(signature.utf8)
        return (0...(bytes.count - s.count)).filter { bytes[$0..<($0 + s.count)].elementsEqual(s) }
    }

    func field(_ bytes: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }

    func put(_ bytes: inout [UInt8], at: Int, _ size: Int, _ value: UInt64) {
        for i in 0..<size { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    func assertRefused(_ path: String, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try HDF5Archive(contentsOf: path), file: file, line: line) { error in
            guard case FormatError.malformed = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue("\(error)".hasPrefix(path) && "\(error)".contains(words), "\(error) should name \(words)", file: file, line: line)
        }
    }
}
