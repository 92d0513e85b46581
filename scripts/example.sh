#!/usr/bin/env bash
# Builds and runs Examples/FineTune, a separate package that depends on Lorikeet BY VERSION:
# the checkout's committed HEAD becomes a git repository with the tag 0.2.0
# (.build-example/lorikeet.git), which the example's Package.swift names with `from: "0.2.0"`.
# SwiftPM refuses unsafe flags in such a dependency, so this also checks that the library
# builds the way a dependent builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=.build-example/lorikeet.git
rm -rf .build-example Examples/FineTune/Package.resolved
mkdir -p .build-example
git clone --quiet --bare . "$repo"
git -C "$repo" tag -f 0.2.0 HEAD >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
swift build --package-path Examples/FineTune --scratch-path .build-example/build --disable-dependency-cache
.build-example/build/debug/FineTune Tests/ArchitecturesTests/Fixtures/llama/model.gguf "$work"
