// swift-tools-version:6.0
// An example program that depends on Lorikeet by version, as any other package would. The
// dependency is a git repository with a version tag; `scripts/example.sh` makes one from the
// checkout (`.build-example/lorikeet.git`, tag 0.2.0) and builds and runs this package.
import PackageDescription

let lorikeet = "file://" + Context.packageDirectory + "/../../.build-example/lorikeet.git"

let package = Package(
    name: "FineTune",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: lorikeet, from: "0.2.0"),
    ],
    targets: [
        .executableTarget(name: "FineTune", dependencies: [.product(name: "Lorikeet", package: "lorikeet")]),
    ]
)
