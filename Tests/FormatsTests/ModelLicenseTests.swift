import Formats
import XCTest

/// The table of model licenses: each known identifier gets its kind and one-line summary, Gemma
/// and the Llama community licenses are named as restrictive, "other" defers to the card's
/// license_name, and an unknown or missing license says so rather than passing as open.
final class ModelLicenseTests: XCTestCase {
    func testKindsOfTheKnownLicenses() {
        let expected: [(String, ModelLicense.Kind, String)] = [
            ("apache-2.0", .permissive, "Apache License 2.0"), ("MIT", .permissive, "MIT License"),
            ("cc-by-4.0", .attribution, "Creative Commons Attribution"),
            ("gemma", .useRestrictions, "Gemma Terms of Use"),
            ("llama2", .useRestrictions, "Llama 2 Community License"), ("llama3.2", .useRestrictions, "Llama 3.x Community License"),
            ("llama3.1", .useRestrictions, "Llama 3.x Community License"),
            ("qwen", .useRestrictions, "Qwen (Tongyi Qianwen) License"), ("tongyi-qianwen", .useRestrictions, "Qwen (Tongyi Qianwen) License"),
            ("qwen-research", .nonCommercial, "Qwen Research License"), ("cc-by-nc-4.0", .nonCommercial, "Creative Commons NonCommercial"),
            ("openrail", .useRestrictions, "Open RAIL license"),
        ]
        for (id, kind, name) in expected {
            let license = ModelLicense.identify(id)
            XCTAssertEqual(license.kind, kind, id)
            XCTAssertEqual(license.name, name, id)
            XCTAssertEqual(license.identifier, id, "the stated identifier is kept as stated")
            XCTAssertFalse(license.summary.isEmpty)
        }
        XCTAssertTrue(ModelLicense.identify(" Apache-2.0 ").isPermissive)
        XCTAssertTrue(ModelLicense.identify("cc-by-4.0").isPermissive)
        XCTAssertFalse(ModelLicense.identify("llama3.2").isPermissive)
    }

    func testGemmaIsNamedRestrictive() {
        let line = ModelLicense.identify("gemma").line
        XCTAssertTrue(line.hasPrefix("gemma — Gemma Terms of Use: use restrictions (not an open-source license)."), line)
        XCTAssertTrue(line.contains("Prohibited Use Policy"), line)
        XCTAssertFalse(ModelLicense.identify("gemma").isPermissive)
        XCTAssertTrue(ModelLicense.identify("cc-by-nc-4.0").line.contains("non-commercial (not an open-source license)"))
        XCTAssertTrue(ModelLicense.identify("apache-2.0").line.hasPrefix("apache-2.0 — Apache License 2.0: permissive."))
    }

    func testOtherDefersToTheLicenseName() {
        let research = ModelLicense.identify("other", name: "qwen-research")
        XCTAssertEqual(research.kind, .nonCommercial)
        XCTAssertEqual(research.identifier, "qwen-research")
        XCTAssertEqual(ModelLicense.identify(nil, name: "gemma").kind, .useRestrictions)
        // A known identifier wins over a name that says something else.
        XCTAssertEqual(ModelLicense.identify("apache-2.0", name: "whatever").kind, .permissive)
        XCTAssertEqual(ModelLicense.identify("other", name: "my-own-terms").kind, .unknown)
        XCTAssertEqual(ModelLicense.identify("other", name: "my-own-terms").identifier, "my-own-terms")
    }

    func testUnknownAndMissingLicensesSaySo() {
        for stated in [nil, "", "unknown", "  "] as [String?] {
            let license = ModelLicense.identify(stated)
            XCTAssertEqual(license.kind, .unknown)
            XCTAssertEqual(license.identifier, "unknown")
            XCTAssertTrue(license.line.contains("states no license"), license.line)
            XCTAssertFalse(license.isPermissive)
        }
        let strange = ModelLicense.identify("some-custom-license")
        XCTAssertEqual(strange.kind, .unknown)
        XCTAssertTrue(strange.line.hasPrefix("some-custom-license: unknown terms."), strange.line)
    }
}
