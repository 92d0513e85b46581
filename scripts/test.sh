#!/usr/bin/env bash
# The test command: set up what the tests need (system libraries, the embedded model for the
# real-model tests), build, and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time goes to stderr, so a slow CI run says which step grew.
step_start=$SECONDS
step() { echo "test.sh: $1 took $((SECONDS - step_start)) s" >&2; step_start=$SECONDS; }
bash scripts/setup.sh
step "setup"
swift build --build-tests
step "build"
# XCTest only: the suite has no Swift Testing tests, and its empty summary would close the log.
swift test --skip-build --disable-swift-testing
step "tests"
# A separate package that depends on Lorikeet by version (a git tag), through the public API only.
bash scripts/example.sh
step "example package"
# Every fuzz harness for a short while (a sanitizer build of its own, ~4 min on 2 cores): a
# parser change that crashes on its own seeds or on near neighbours fails here. Longer runs:
# scripts/fuzz.sh all SECONDS. LORIKEET_FUZZ_SECONDS=0 skips this step. A hang still fails
# here, but the bar is 5 s of wall clock: a shared CI machine can stall a 30 ms input past 1 s.
if [ "${LORIKEET_FUZZ_SECONDS:-10}" != 0 ]; then
    LORIKEET_FUZZ_TIMEOUT=${LORIKEET_FUZZ_TIMEOUT:-5} bash scripts/fuzz.sh all "${LORIKEET_FUZZ_SECONDS:-10}"
    step "fuzz smoke"
fi
