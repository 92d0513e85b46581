#!/usr/bin/env bash
# libFuzzer over Lorikeet's parsers of untrusted input, with AddressSanitizer.
#   scripts/fuzz.sh [HARNESS|all] [SECONDS_EACH]     (default: all, 60 s each)
# Harnesses: gguf safetensors jsonl jinja recipe set tokenizer-json checkpoint hf-folder
# (Sources/LorikeetFuzz/Harness.swift). The sanitizer build lives in its own scratch path
# ($LORIKEET_FUZZ_SCRATCH, default .build-fuzz); the package's normal build is untouched.
# Seeds come from committed fixtures; an input slower than 1 s counts as a failure (-timeout=1;
# LORIKEET_FUZZ_TIMEOUT=N for a machine so loaded that a fast input can stall that long;
# LORIKEET_FUZZ_FLAGS adds libFuzzer flags, e.g. -report_slow_units=1 to save every input over
# 1 s of wall time as a slow-unit artifact for replay on a quiet machine).
# Crashes land in $SCRATCH/findings/HARNESS/ (not artifacts/: SwiftPM owns that folder of a
# scratch path and prunes what it does not know at the next build); replay one with the normal build:
#   swift build --product LorikeetFuzz && .build/debug/LorikeetFuzz HARNESS FILE
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
seconds=${2:-60}
scratch=${LORIKEET_FUZZ_SCRATCH:-$root/.build-fuzz}
harnesses=(gguf safetensors jsonl jinja recipe set tokenizer-json checkpoint hf-folder)
[ "$which" = all ] || harnesses=("$which")

swift build -c release --scratch-path "$scratch" --product LorikeetFuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLORIKEET_FUZZ >&2
fuzzer="$scratch/release/LorikeetFuzz"
# allocator_may_return_null: libhdf5 checks malloc's result, and a file may ask it for a
# terabyte (a real allocator returns NULL and HDF5 reports an error; ASan would abort).
# detect_leaks=0: Foundation's FileManager.contents(atPath:) leaks 4 KiB on an empty file.
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0

# Seeds: committed fixtures (small ones), plus a checkpoint written by the normal build.
seed() {
    local harness=$1 corpus=$2
    case $harness in
        gguf) find Tests -name '*.gguf' -size -2M -exec cp {} "$corpus/" \; ;;
        safetensors) find Tests -name '*.safetensors' -size -2M -exec cp {} "$corpus/" \; ;;
        jsonl) cp Tests/FuzzSeeds/jsonl/* "$corpus/" ;;
        set) cp Tests/FuzzSeeds/set/* "$corpus/" ;;
        recipe) cp recipes/*.yaml "$corpus/" ;;
        jinja) python3 -c '
import json, sys
d = json.load(open("Tests/TokenizationTests/Fixtures/template-goldens.json"))
for name, template in d["templates"].items():
    open(sys.argv[1] + "/" + name + ".jinja", "w").write(template if isinstance(template, str) else template.get("template", ""))
' "$corpus" ;;
        tokenizer-json) cp Tests/TokenizationTests/Fixtures/tokenizer-json/*.json "$corpus/" ;;
        checkpoint) "$fuzzer" seed-checkpoint "$corpus/seed.h5" ;;
        hf-folder)
            # One input = a folder's files joined by "\n\x1e\n" in the harness's order: config.json,
            # model.safetensors, tokenizer.json, tokenizer_config.json, chat_template.jinja, README.md.
            python3 -c '
import glob, os, sys
sep = b"\n\x1e\n"
tokenizer = open("Tests/TokenizationTests/Fixtures/tokenizer-json/smollm2.skeleton.json", "rb").read()
tconfig = b"{\"chat_template\": \"{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}\"}"
card = b"---\nlicense: apache-2.0\nbase_model: fuzz\n---\n"
for folder in sorted(glob.glob("Tests/ArchitecturesTests/Fixtures/*/")):
    name = os.path.basename(folder.rstrip("/"))
    files = [open(folder + "config.json", "rb").read(), open(folder + "model.safetensors", "rb").read(),
             tokenizer, tconfig, b"{{ messages[0].content }}", card]
    open(os.path.join(sys.argv[1], name), "wb").write(sep.join(files))
' "$corpus" ;;
    esac
}

status=0
for harness in "${harnesses[@]}"; do
    corpus="$scratch/corpus/$harness"
    artifacts="$scratch/findings/$harness"
    mkdir -p "$corpus" "$artifacts"
    [ -n "$(ls -A "$corpus")" ] || seed "$harness" "$corpus"
    rm -f "$artifacts"/*  # this run's findings only (earlier ones: keep them as regression tests)
    max_len=65536
    [ "$harness" = hf-folder ] && max_len=262144  # a whole tiny model folder per input
    echo "== $harness: $seconds s, corpus $(ls "$corpus" | wc -l) files" >&2
    # -malloc_limit_mb: memory is bounded by what is touched (-rss_limit_mb), not by one
    # malloc's size. libhdf5 mallocs whatever size a damaged heap header claims (16 GiB in one
    # checkpoint input) and fails on the short read that follows without touching it (50 ms,
    # 34 MB RSS outside the fuzzer); libFuzzer's default stops at any malloc over the RSS limit.
    LORIKEET_FUZZ_HARNESS=$harness "$fuzzer" "$corpus" -max_total_time="$seconds" -timeout="${LORIKEET_FUZZ_TIMEOUT:-1}" -rss_limit_mb=4096 -malloc_limit_mb=1048576 \
        -max_len=$max_len -print_final_stats=1 -artifact_prefix="$artifacts/" ${LORIKEET_FUZZ_FLAGS:-} 2>&1 | tee "$scratch/$harness.log" | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|Slowest unit)' || true
    if ls "$artifacts"/* >/dev/null 2>&1; then echo "$harness: failing inputs in $artifacts" >&2; status=1; fi
done
exit $status
