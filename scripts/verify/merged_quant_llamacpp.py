"""Is `lorikeet merge --format gguf --quant X` byte-equal to llama.cpp's own quantizer?

Merges ADAPTER into MODEL twice per encoding: Lorikeet's F16 merge quantized by
`llama_cpp.llama_model_quantize` (llama.cpp's quantizer, no imatrix), and Lorikeet's own
`--quant X`. Compares the two files tensor for tensor with the `gguf` package (name, type,
shape, bytes) and `general.file_type`, then loads Lorikeet's file in llama_cpp.Llama and
generates a few greedy tokens. Exit status 1 when any tensor differs. With --types-json, also
writes llama.cpp's choice of type per tensor (name, ggml dims, type per encoding) for the
model: Tests/LorikeetCLITests/Fixtures/quant/llamacpp-type-mix.json holds those of SmolLM2,
Qwen2.5-Coder-0.5B and Gemma 3 270M, which CI checks Lorikeet's choice against.

    swift build -c release
    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/merged_quant_llamacpp.py \\
        --model smollm2 --adapter CKPT_OR_PEFT|random [--quants Q4_K_M,Q5_K_M,Q6_K,Q8_0,Q5_0,Q4_0,Q4_1]
Ran with llama-cpp-python (version printed first).
"""
import argparse, ctypes, importlib.metadata, os, subprocess, sys, tempfile
import numpy as np
import gguf
import llama_cpp

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.path.join(ROOT, ".build", "release", "lorikeet")
FTYPES = {"Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M", "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
          "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0", "Q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
          "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1"}


MODELS = os.path.expanduser("~/.cache/lorikeet/models")
SHORT = {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf", "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
         "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
PROJECTIONS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def random_adapter(model, folder, rank=8, seed=18):
    """A PEFT folder with a seeded random rank-`rank` adapter on every projection of `model`."""
    from safetensors.numpy import save_file
    import json
    path = SHORT.get(model, model)
    reader = gguf.GGUFReader(path if os.path.isabs(path) else os.path.join(MODELS, path))
    rng, tensors = np.random.default_rng(seed), {}
    for t in reader.tensors:
        parts = t.name.split(".")
        if len(parts) != 4 or parts[0] != "blk" or parts[2] not in PROJECTIONS or parts[3] != "weight":  # not biases
            continue
        columns, rows = int(t.shape[0]), int(t.shape[1])
        key = f"base_model.model.model.layers.{parts[1]}.{PROJECTIONS[parts[2]]}"
        tensors[key + ".lora_A.weight"] = (rng.standard_normal((rank, columns)) / np.sqrt(columns)).astype(np.float32)
        tensors[key + ".lora_B.weight"] = (rng.standard_normal((rows, rank)) * 0.01).astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
    with open(os.path.join(folder, "adapter_config.json"), "w") as fh:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
                   "bias": "none", "target_modules": sorted({p.split(".")[1] for p in PROJECTIONS.values()})}, fh)
    return folder


def greedy(path, prompt, n, threads):
    """n greedy tokens after a ChatML prompt, fed one token per decode call (this
    llama-cpp-python build crashed in multi-token decodes on every file, llama.cpp's own too)."""
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=threads, verbose=False, logits_all=True)
    ids = llm.tokenize(f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n".encode(), add_bos=False, special=True)
    out = []
    for t in ids:
        llm.eval([t])
    for _ in range(n):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(t)
        llm.eval([t])
    text = llm.detokenize(out).decode(errors="replace")
    del llm
    return f"{text!r} (token ids {out})"


def llama_quantize(src, dst, ftype_name, threads):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[ftype_name])
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize({ftype_name}) failed: {rc}")


def file_type(reader):
    field = reader.fields.get("general.file_type")
    return int(field.parts[field.data[0]][0]) if field else None


def compare(ours_path, theirs_path):
    ours, theirs = gguf.GGUFReader(ours_path), gguf.GGUFReader(theirs_path)
    problems, types = [], {}
    if sorted(t.name for t in ours.tensors) != sorted(t.name for t in theirs.tensors):
        problems.append("tensor names differ")
    theirs_by_name = {t.name: t for t in theirs.tensors}
    for t in ours.tensors:
        other = theirs_by_name.get(t.name)
        if other is None:
            problems.append(f"{t.name}: missing in llama.cpp's file")
            continue
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        if t.tensor_type != other.tensor_type:
            problems.append(f"{t.name}: type {t.tensor_type.name} vs llama.cpp {other.tensor_type.name}")
        elif list(t.shape) != list(other.shape):
            problems.append(f"{t.name}: shape {list(t.shape)} vs {list(other.shape)}")
        else:
            a, b = np.asarray(t.data).view(np.uint8).ravel(), np.asarray(other.data).view(np.uint8).ravel()
            if a.size != b.size or not np.array_equal(a, b):
                n = int(np.count_nonzero(a != b)) if a.size == b.size else -1
                problems.append(f"{t.name} ({t.tensor_type.name}): {n} of {a.size} bytes differ")
    if file_type(ours) != file_type(theirs):
        problems.append(f"general.file_type {file_type(ours)} vs llama.cpp {file_type(theirs)}")
    return problems, types, len(ours.tensors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=BIN, help="the lorikeet executable (default: the release build)")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--adapter", required=True, help="a checkpoint or PEFT folder; 'random': a seeded random rank-8 PEFT adapter on every projection")
    ap.add_argument("--quants", default="Q4_K_M,Q5_K_M,Q6_K,Q8_0,Q5_0,Q4_0,Q4_1")
    ap.add_argument("--prompt", default="What is a compiler?")
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types-json", help="merge llama.cpp's type per tensor into this JSON file under the model's name")
    args = ap.parse_args()
    types_per_tensor = {}
    print(f"llama-cpp-python {importlib.metadata.version('llama_cpp_python')}, gguf {importlib.metadata.version('gguf')}")
    work = tempfile.mkdtemp(prefix="lorikeet-requant-")
    f16 = os.path.join(work, "merged-f16.gguf")
    if args.adapter == "random":
        args.adapter = random_adapter(args.model, os.path.join(work, "random-adapter"))
    merge = [args.bin, "merge", "--model", args.model, "--adapter", args.adapter, "--format", "gguf"]
    subprocess.run(merge + ["--output", f16, "--quant", "f16"], check=True)
    failed = False
    for q in args.quants.split(","):
        ours, theirs = os.path.join(work, f"lorikeet-{q}.gguf"), os.path.join(work, f"llamacpp-{q}.gguf")
        subprocess.run(merge + ["--output", ours, "--quant", q, "--no-eval"], check=True)
        llama_quantize(f16, theirs, q, args.threads)
        problems, types, count = compare(ours, theirs)
        types_per_tensor[q] = [[t.name, [int(d) for d in t.shape], t.tensor_type.name] for t in gguf.GGUFReader(theirs).tensors]
        mix = ", ".join(f"{k} {v}" for k, v in sorted(types.items()))
        if problems:
            failed = True
            print(f"{q}: {len(problems)} of {count} tensors DIFFER ({mix})")
            for p in problems[:20]:
                print("   ", p)
        else:
            print(f"{q}: all {count} tensors byte-equal to llama.cpp's quantizer ({mix})")
        print(f"    llama.cpp loads {os.path.basename(ours)} and generates: {greedy(ours, args.prompt, args.tokens, args.threads)}")
    if args.types_json:
        import json
        table = json.load(open(args.types_json)) if os.path.exists(args.types_json) else {}
        table["generator"] = f"scripts/verify/merged_quant_llamacpp.py, llama-cpp-python {importlib.metadata.version('llama_cpp_python')}"
        table.setdefault("models", {})[args.model] = types_per_tensor
        with open(args.types_json, "w") as fh:
            json.dump(table, fh, indent=0)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
