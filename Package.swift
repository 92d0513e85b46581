// swift-tools-version:6.0
// Lorikeet: LoRA/QLoRA fine-tuning on CPU. Dependencies between targets point down only:
// system shims and C kernels → TensorCore → (Quantization, Formats, …) → Training, Export,
// Evaluation, Decoding → the `Lorikeet` library → the `lorikeet` CLI and `lorikeet-bench`.
//
// No target carries `unsafeFlags`: SwiftPM refuses them in a package that another package
// depends on by version, and every library target here is built by such dependents. Hot
// generic code is `@inlinable`; the C kernels ask for their optimisations in the source.
import PackageDescription

let package = Package(
    name: "Lorikeet",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Lorikeet", targets: ["Lorikeet"]),
        .executable(name: "lorikeet", targets: ["LorikeetCLI"]),
        .executable(name: "lorikeet-bench", targets: ["LorikeetBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.14.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libopenblas-dev liblapacke-dev libhdf5-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke",
                       providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Hot loops in plain C with runtime CPU-feature dispatch and a scalar twin per SIMD path.
        .target(name: "CKernels"),
        // Open MPI, loaded at run time (dlopen of libmpi.so.40) only by `mpirun` runs: nothing
        // links against MPI, so neither this package nor its dependents need it to build or run.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),

        // The engine, then the model-side modules (each below the ones that use it).
        .target(name: "TensorCore", dependencies: ["CBLAS", "CLAPACKE", "CKernels"]),
        .target(name: "Quantization", dependencies: ["TensorCore", "CKernels"]),
        .target(name: "Formats", dependencies: ["TensorCore", "CKernels", "CHDF5"]),
        .target(name: "Architectures", dependencies: ["TensorCore", "Quantization", "Formats", "CKernels"]),
        .target(name: "LoRA", dependencies: ["TensorCore", "Quantization", "Architectures"]),
        .target(name: "Tokenization", dependencies: ["Formats"]),
        .target(name: "Datasets", dependencies: ["TensorCore", "Formats", "Tokenization", "CZlib"]),
        .target(name: "Decoding", dependencies: ["TensorCore", "Architectures"]),

        // The work: training runs and checkpoints, merge/export writers, evaluation.
        .target(name: "Training",
                dependencies: ["TensorCore", "LoRA", "Architectures", "Datasets", "Formats", "Tokenization", "Evaluation", "CMPI",
                               .product(name: "Yams", package: "Yams")]),
        .target(name: "Export",
                dependencies: ["TensorCore", "Quantization", "Formats", "Architectures", "LoRA", "Training"]),
        .target(name: "Evaluation", dependencies: ["TensorCore", "Formats", "Architectures", "Datasets", "Decoding", "Tokenization"]),

        // The public library: what a Swift program imports.
        .target(name: "Lorikeet",
                dependencies: ["TensorCore", "Quantization", "Formats", "Architectures", "LoRA", "Tokenization",
                               "Datasets", "Decoding", "Training", "Export", "Evaluation"]),

        // The OpenAI-compatible HTTP server over the facade. Apart from `Lorikeet`, so that a
        // program importing the library never compiles a web server.
        .target(name: "Serving",
                dependencies: ["Lorikeet", .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "HummingbirdCore", package: "hummingbird"),
                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")]),

        .target(name: "TestSupport",
                dependencies: ["TensorCore"],
                path: "Sources/TestSupport"),

        .executableTarget(name: "LorikeetCLI",
                          dependencies: [
                              "Lorikeet", "Serving", "TensorCore", "Quantization", "Formats", "Architectures", "Tokenization", "Decoding", "Datasets", "LoRA",
                              "Training", "Export", "Evaluation", "CBLAS", "CKernels",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                          ]),
        // libFuzzer harnesses (scripts/fuzz.sh builds them with -sanitize=fuzzer,address in a
        // separate scratch path); built normally, a replayer of inputs through the same harnesses.
        .executableTarget(name: "LorikeetFuzz", dependencies: ["Formats", "Tokenization", "Datasets", "Training", "Lorikeet"]),
        .executableTarget(name: "LorikeetBench",
                          dependencies: [
                              "Lorikeet", "Serving", "TensorCore", "Quantization", "Formats", "Architectures", "Tokenization", "Decoding",
                              "Datasets", "LoRA", "Training", "CBLAS", "CKernels",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                          ]),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "TestSupport"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ArchitecturesTests", dependencies: ["Architectures", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "Architectures", "Formats", "Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Export", "Datasets", "LoRA", "Architectures", "Formats", "Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Tokenization", "Formats", "Architectures", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DecodingTests", dependencies: ["Decoding", "Architectures", "Formats", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "Formats"], exclude: ["Fixtures"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport", "CHDF5"], exclude: ["Fixtures"]),
        .testTarget(name: "LorikeetCLITests", dependencies: ["LorikeetCLI", "Formats", "Architectures", "LoRA", "Training", "Export", "Evaluation", "Tokenization", "Quantization", "TensorCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "LorikeetTests", dependencies: ["Lorikeet"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Lorikeet", "Training", "LoRA", "Formats", "Architectures", "TensorCore", "TestSupport"]),
        .testTarget(name: "LorikeetBenchTests", dependencies: ["LorikeetBench"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CBLAS", "CLAPACKE", "CHDF5"]),
    ]
)
