import Foundation

/// Where scripts/setup.sh puts what it fetches, and where everything else looks for it:
/// `$LORIKEET_CACHE` (default ~/.cache/lorikeet).
public enum CacheLocation {
    public static var root: String {
        ProcessInfo.processInfo.environment["LORIKEET_CACHE"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/lorikeet").path
    }

    /// Model files: `$LORIKEET_MODEL_DIR`, else `<root>/models`.
    public static var models: String { ProcessInfo.processInfo.environment["LORIKEET_MODEL_DIR"] ?? root + "/models" }

    /// The embedded default model (SmolLM2-135M-Instruct, GGUF Q4_1).
    public static var embeddedModel: String { models + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// Gemma 3 270M (base, Gemma terms), GGUF Q4_K_M: a real test base scripts/setup.sh fetches.
    public static var gemma3Model: String { models + "/gemma-3-270m-q4_k_m.gguf" }

    /// Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), GGUF Q4_K_M: a real test base scripts/setup.sh fetches.
    public static var qwenCoderModel: String { models + "/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" }

    /// Tokenized datasets, keyed by what produced them (see `TokenizationCache`).
    public static var tokenizedData: String { root + "/tokenized" }

    /// llama.cpp's vocabulary and template fixtures from the llama-cpp-python 0.3.36 sdist.
    public static var llamaCppFixtures: String { root + "/llama-cpp-python-0.3.36" }
}
