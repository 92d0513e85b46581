"""Do transformers and llama.cpp load what `lorikeet merge` writes, and agree with Lorikeet?

Merges CKPT into its base (SmolLM2's embedded Q4_1 GGUF) and checks:
  1. tokenizer: AutoTokenizer on the merged folder (tokenizer.json written from the GGUF)
     gives `lorikeet tokenize`'s ids on a few strings, and the chat template renders;
  2. safetensors: transformers loads the merged folder (f32, f16, bf16; weights upcast to
     f32 for the forward so only the stored rounding differs) and its prompt logits are
     compared with `lorikeet logits` for base + the unmerged adapter, --onto original and
     --onto trained (f32 folders);
  3. gguf: llama.cpp (llama-cpp-python 0.3.36) loads merged F16 and Q8_0 GGUFs (--onto
     original and trained); its greedy reply's opening tokens are compared with `lorikeet
     generate` on the same merged GGUF and on base + unmerged adapter (original: the adapter
     exported as PEFT over the GGUF as stored; trained: the checkpoint, NF4 base); the
     reply of llama.cpp on the unmerged base is shown as a control.

    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/merge_parity.py CKPT [--tokens 16]
Q8_0 replies are shown, not required to agree: Q8_0 weight rounding, and llama.cpp's 8-bit
activations in its Q8_0 products, flip near-ties between the top two tokens (the adapter
trained over NF4 leaves several: e.g. '(' 33.85 vs 'A' 33.72 after "What is a compiler?").
Required of each GGUF: llama.cpp and Lorikeet, reading the same merged file, pick the same
next token at >= 99% (F16) / 90% (Q8_0) of prompt positions.
Exit status 0 when the tokenizers agree, f32 logits agree within 1e-3, the GGUF prompt
logits agree as above, and every merged F16 GGUF's greedy reply starts with the same
MIN_OPENING tokens as both of Lorikeet's.
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np
import torch
from llama_cpp import Llama
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.path.join(ROOT, ".build", "release", "lorikeet")
BASE = os.path.expanduser("~/.cache/lorikeet/models/SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPTS = ["What is a compiler?", "What is FOLDOC?", "What is a monad?", "Define 'garbage collection'."]
MIN_OPENING = 4  # opening tokens of an F16 GGUF's greedy reply that must agree
TEXTS = ["Hello world", "The year 2024 had 366 days.", "  indented\tcode() {}", "naïve café — ünïcode", "<|im_start|>user\nhi<|im_end|>"]


def run(*args):
    return subprocess.run([BIN, *args], check=True, capture_output=True, text=True).stdout


def lorikeet_logits(ckpt, ids, onto, work):
    path = os.path.join(work, "logits.safetensors")
    run("logits", "--adapter", ckpt, "--onto", onto, "--ids", ",".join(map(str, ids)), "--output", path)
    return load_file(path)["logits"]


def lorikeet_logits_of(model, ids, work):
    path = os.path.join(work, "logits.safetensors")
    run("logits", "--model", model, "--ids", ",".join(map(str, ids)), "--output", path)
    return load_file(path)["logits"]


def greedy(llm, ids, n):
    out = []
    for t in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        if t == llm.token_eos() or t == 2 or len(out) >= n:
            break
        out.append(t)
    return out


def common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--tokens", type=int, default=16)
    args = ap.parse_args()
    ckpt = os.path.abspath(args.checkpoint)
    work = tempfile.mkdtemp(prefix="lorikeet-merge-")
    out = {}
    for onto, dtype in [("original", "f32"), ("original", "f16"), ("original", "bf16"), ("trained", "f32")]:
        out[onto, dtype] = os.path.join(work, f"{onto}-{dtype}")
        run("merge", "--adapter", ckpt, "--output", out[onto, dtype], "--format", "safetensors", "--dtype", dtype, "--onto", onto)
    ok = True

    # 1. Tokenizer.
    tok = AutoTokenizer.from_pretrained(out["original", "f32"])
    same = 0
    for text in TEXTS:
        ours = [int(x) for x in run("tokenize", text).split()]
        theirs = tok(text, add_special_tokens=True)["input_ids"]
        same += ours == theirs
        if ours != theirs:
            print("tokenizer DIFF", repr(text), ours, theirs)
    print(f"tokenizer: {same}/{len(TEXTS)} strings give lorikeet tokenize's ids (AutoTokenizer on the merged folder)")
    ok &= same == len(TEXTS)

    # 2. Logits, transformers on the merged folders vs Lorikeet with the adapter unmerged.
    prompts = []
    for text in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    reference = {onto: [lorikeet_logits(ckpt, ids, onto, work) for ids in prompts] for onto in ["original", "trained"]}
    for (onto, dtype), folder in out.items():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        worst = 0.0
        for ids, ref in zip(prompts, reference[onto]):
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0].numpy()
            worst = max(worst, float(np.abs(logits - ref).max()))
        print(f"logits: merged {dtype:4} onto {onto:8} vs lorikeet base+adapter: max |diff| {worst:.2e} over {len(prompts)} prompts ({sum(map(len, prompts))} positions)")
        if dtype == "f32":
            ok &= worst <= 1e-3

    # 3. llama.cpp on the merged GGUFs. Lorikeet's unmerged counterpart of --onto original is
    # the adapter exported as PEFT (applied over the GGUF as stored); of --onto trained, the
    # checkpoint itself (its recipe re-encodes the base in NF4, as in training).
    peft = os.path.join(work, "peft")
    run("export", "--adapter", ckpt, "--format", "peft", "--output", peft)
    unmerged_adapter = {"original": peft, "trained": ckpt}
    plain = Llama(model_path=BASE, n_ctx=512, n_threads=2, verbose=False)

    def reply_ids(*generate_args):
        text = run("generate", *generate_args, "--temperature", "0", "--max-tokens", str(args.tokens)).rstrip("\n")
        return tok(text, add_special_tokens=False)["input_ids"][: args.tokens]

    unmerged = {onto: {text: reply_ids("--adapter", adapter, "--prompt", text) for text in PROMPTS} for onto, adapter in unmerged_adapter.items()}
    for onto, quant in [("original", "f16"), ("trained", "f16"), ("original", "q8_0"), ("trained", "q8_0")]:
        path = os.path.join(work, f"{onto}-{quant}.gguf")
        run("merge", "--adapter", ckpt, "--output", path, "--format", "gguf", "--quant", quant, "--onto", onto)
        llm = Llama(model_path=path, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
        # Prompt logits: llama.cpp and Lorikeet reading the same merged file.
        worst, agree, positions = 0.0, 0, 0
        for ids in prompts:
            llm.reset()
            llm.eval(ids)
            theirs = np.array(llm.scores[: len(ids)])
            ours = lorikeet_logits_of(path, ids, work)
            worst = max(worst, float(np.abs(theirs - ours).max()))
            agree += int((theirs.argmax(-1) == ours.argmax(-1)).sum())
            positions += len(ids)
        print(f"gguf {quant:4} onto {onto:8} prompt logits, llama.cpp vs lorikeet on the same file: max |diff| {worst:.3f}, same argmax at {agree}/{positions} positions")
        ok &= agree >= (0.99 if quant == "f16" else 0.9) * positions
        for text, ids in zip(PROMPTS, prompts):
            theirs = greedy(llm, ids, args.tokens)
            merged = reply_ids("--model", path, "--prompt", text)
            a = common_prefix(theirs, merged)
            b = common_prefix(theirs, unmerged[onto][text])
            c = common_prefix(theirs, greedy(plain, ids, args.tokens))
            print(f"gguf {quant:4} onto {onto:8} {text!r:32} llama.cpp's first tokens equal to lorikeet on the merged gguf: {a:2}/{len(theirs)}, "
                  f"on base+unmerged adapter: {b:2}/{len(theirs)}; llama.cpp on the base alone: {c:2}  {tok.decode(theirs)!r}")
            if quant == "f16":
                ok &= a >= min(MIN_OPENING, len(theirs)) and b >= min(MIN_OPENING, len(theirs))
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
