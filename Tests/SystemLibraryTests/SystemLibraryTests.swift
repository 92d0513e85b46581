import CBLAS
import CHDF5
import CLAPACKE
import Foundation
import XCTest

/// The system-library shims link and behave: BLAS multiplies, LAPACKE decomposes, and HDF5's
/// macro constants (exposed through the shim's inline accessors) work for a file round trip.
final class SystemLibraryTests: XCTestCase {
    func testBLASMultiplies() {
        let a: [Float] = [1, 2, 3, 4, 5, 6]      // [2, 3]
        let b: [Float] = [1, 0, 0, 1, 1, 1]      // [3, 2]
        var c = [Float](repeating: 0, count: 4)  // [2, 2]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        XCTAssertEqual(c, [4, 5, 10, 11])
        XCTAssertGreaterThan(openblas_get_num_threads(), 0)
    }

    func testLAPACKESingularValues() {
        // diag(3, 2) rotated: singular values are 3 and 2 whatever the rotation.
        let (cs, sn): (Float, Float) = (0.6, 0.8)
        var m: [Float] = [3 * cs, -2 * sn, 3 * sn, 2 * cs]
        var s = [Float](repeating: 0, count: 2), u = [Float](repeating: 0, count: 4), vt = [Float](repeating: 0, count: 4)
        var superb = [Float](repeating: 0, count: 1)
        let info = LAPACKE_sgesvd(LAPACK_ROW_MAJOR, CChar(bitPattern: UInt8(ascii: "A")), CChar(bitPattern: UInt8(ascii: "A")), 2, 2, &m, 2, &s, &u, 2, &vt, 2, &superb)
        XCTAssertEqual(info, 0)
        XCTAssertEqual(s[0], 3, accuracy: 1e-5)
        XCTAssertEqual(s[1], 2, accuracy: 1e-5)
    }

    func testHDF5RoundTripThroughShimConstants() throws {
        _ = lk_H5_silence_errors()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorikeet-h5-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [1.5, -2, 3.25, 0, 7, 8]
        let file = H5Fcreate(path, lk_H5F_ACC_TRUNC(), lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(file, 0)
        var dims: [hsize_t] = [2, 3]
        let space = H5Screate_simple(2, &dims, nil)
        let linkProperties = H5Pcreate(lk_H5P_LINK_CREATE())  // create "adapter/" on the way
        H5Pset_create_intermediate_group(linkProperties, 1)
        let dataset = H5Dcreate2(file, "adapter/weight", lk_H5T_NATIVE_FLOAT(), space, linkProperties,
                                 lk_H5P_DEFAULT(), lk_H5P_DEFAULT())
        H5Pclose(linkProperties)
        XCTAssertGreaterThanOrEqual(dataset, 0)
        XCTAssertGreaterThanOrEqual(H5Dwrite(dataset, lk_H5T_NATIVE_FLOAT(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), values), 0)
        H5Dclose(dataset); H5Sclose(space); H5Fclose(file)

        let reopened = H5Fopen(path, lk_H5F_ACC_RDONLY(), lk_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(reopened, 0)
        let readSet = H5Dopen2(reopened, "adapter/weight", lk_H5P_DEFAULT())
        var back = [Float](repeating: 0, count: 6)
        XCTAssertGreaterThanOrEqual(H5Dread(readSet, lk_H5T_NATIVE_FLOAT(), lk_H5S_ALL(), lk_H5S_ALL(), lk_H5P_DEFAULT(), &back), 0)
        H5Dclose(readSet); H5Fclose(reopened)
        XCTAssertEqual(back, values)
        // A missing dataset is an error code, not a crash (errors silenced, reported by us).
        let again = H5Fopen(path, lk_H5F_ACC_RDONLY(), lk_H5P_DEFAULT())
        XCTAssertLessThan(H5Dopen2(again, "nope", lk_H5P_DEFAULT()), 0)
        H5Fclose(again)
    }
}
