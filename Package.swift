// swift-tools-version:6.0
// Lorikeet: LoRA/QLoRA fine-tuning on CPU. Dependencies between targets point down only:
// system shims and C kernels → TensorCore → (Quantization, Formats, …) → the `lorikeet` CLI.
import PackageDescription

/// Release builds of the library targets get cross-module optimisation; unchecked
/// arithmetic stays off (overflow traps are cheap and catch bugs on untrusted sizes).
let swiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "Lorikeet",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lorikeet", targets: ["lorikeet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.0"),
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
        .target(name: "CKernels",
                cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),

        .target(name: "TensorCore",
                dependencies: ["CBLAS", "CLAPACKE", "CKernels"],
                swiftSettings: swiftSettings),
        .target(name: "Quantization",
                dependencies: ["TensorCore", "CKernels"],
                swiftSettings: swiftSettings),
        .target(name: "Formats",
                dependencies: ["TensorCore", "CKernels", "CHDF5"],
                swiftSettings: swiftSettings),
        .target(name: "Models",
                dependencies: ["TensorCore", "Quantization", "Formats", "CKernels"],
                swiftSettings: swiftSettings),
        .target(name: "LoRA",
                dependencies: ["TensorCore", "Quantization", "Models"],
                swiftSettings: swiftSettings),
        .target(name: "Training",
                dependencies: ["TensorCore", "LoRA", "Models", "Data", "Formats", "Tokenizers",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "Generation",
                dependencies: ["TensorCore", "Models"],
                swiftSettings: swiftSettings),
        .target(name: "Tokenizers",
                dependencies: ["Formats"],
                swiftSettings: swiftSettings),
        .target(name: "Data",
                dependencies: ["TensorCore", "Formats", "Tokenizers", "CZlib"],
                swiftSettings: swiftSettings),
        .target(name: "TestSupport",
                dependencies: ["TensorCore"],
                path: "Sources/TestSupport"),

        .executableTarget(name: "lorikeet",
                          dependencies: [
                              "TensorCore", "Formats", "Models", "Tokenizers", "Generation", "Data", "LoRA", "Training", "CBLAS", "CKernels",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                          ],
                          swiftSettings: swiftSettings),

        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore", "TestSupport"]),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "TestSupport"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "Models", "Formats", "Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Data", "LoRA", "Models", "Formats", "Quantization", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Tokenizers", "Formats", "Models", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "GenerationTests", dependencies: ["Generation", "Models", "Formats", "TensorCore"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "Formats"], exclude: ["Fixtures"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport", "CHDF5"], exclude: ["Fixtures"]),
        .testTarget(name: "LorikeetCLITests", dependencies: ["lorikeet", "Formats", "Models", "LoRA", "Training", "Tokenizers", "Quantization", "TensorCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CBLAS", "CLAPACKE", "CHDF5"]),
    ]
)
