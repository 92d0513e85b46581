"""Is the Q/K row order of `lorikeet export --format gguf` the one llama.cpp needs?

Prompt logits of llama.cpp (llama-cpp-python 0.3.36) with the exported LoRA GGUF over
SmolLM2's Q4_1 GGUF are compared with transformers + PEFT applying the same adapter (exported
as a PEFT folder) over the same weights dequantized, at every prompt position. As a control,
the same LoRA GGUF is rewritten with Q/K lora_b rows left in Hugging Face order: if the export's
permutation is right, the control must be clearly further from PEFT than the export.

    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/llamacpp_lora_logits.py CKPT
"""
import os, subprocess, sys, tempfile
import numpy as np
import torch
import gguf
from llama_cpp import Llama
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
BIN = os.path.join(ROOT, ".build", "release", "lorikeet")
BASE = os.path.expanduser("~/.cache/lorikeet/models/SmolLM2-135M-Instruct.Q4_1.gguf")
HF = os.path.expanduser("~/.cache/lorikeet-peers/smollm2-hf")
PROMPTS = ["What is a compiler?", "What is FOLDOC?", "What is a monad?", "Define 'garbage collection'."]
HEADS = {"attn_q": 9, "attn_k": 3}  # SmolLM2-135M


def unpermuted_copy(src, dst):
    """The same LoRA GGUF with Q/K lora_b rows put back in Hugging Face order (the control)."""
    r = gguf.GGUFReader(src)
    alpha = float(r.fields["adapter.lora.alpha"].parts[r.fields["adapter.lora.alpha"].data[0]][0])
    w = gguf.GGUFWriter(dst, "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    for t in r.tensors:
        data = np.array(t.data, dtype=np.float32)
        kind = t.name.split(".")[2]
        if t.name.endswith("lora_b") and kind in HEADS:
            rows = data.shape[0]
            head_rows = rows // HEADS[kind]
            half = head_rows // 2
            order = [(row // head_rows) * head_rows + 2 * ((row % head_rows) % half) + (row % head_rows) // half for row in range(rows)]
            data = data[order]  # HF row `row` is GGUF row order[row]
        w.add_tensor(t.name, data)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def main():
    ckpt = sys.argv[1]
    work = tempfile.mkdtemp(prefix="lorikeet-gguf-")
    lora, control, peft = os.path.join(work, "lora.gguf"), os.path.join(work, "control.gguf"), os.path.join(work, "peft")
    subprocess.run([BIN, "export", "--adapter", ckpt, "--format", "gguf", "--output", lora], check=True, capture_output=True)
    subprocess.run([BIN, "export", "--adapter", ckpt, "--format", "peft", "--output", peft], check=True, capture_output=True)
    unpermuted_copy(lora, control)
    tok = AutoTokenizer.from_pretrained(HF)
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(HF, dtype=torch.float32), peft).eval()
    plain_ref = AutoModelForCausalLM.from_pretrained(HF, dtype=torch.float32).eval()
    runs = {name: Llama(model_path=BASE, lora_path=path, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
            for name, path in [("export", lora), ("control", control), ("no LoRA", None)]}
    stats = {name: [] for name in runs}
    effect, floor = [], []
    for text in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        with torch.no_grad():
            expected = ref(torch.tensor([ids])).logits[0].numpy()
            base = plain_ref(torch.tensor([ids])).logits[0].numpy()
        effect.append(np.abs(expected - base).mean())
        for name, llm in runs.items():
            llm.reset()
            llm.eval(ids)
            got = np.array(llm.scores[: len(ids)])
            if name == "no LoRA":
                floor.append(np.abs(got - base).mean())
            stats[name].append((np.abs(got - expected).mean(), (got.argmax(-1) == expected.argmax(-1)).mean()))
    print(f"adapter's own effect on PEFT's logits: mean |Δ| {np.mean(effect):.4f}")
    print(f"llama.cpp's own arithmetic (no LoRA vs transformers, no adapter): mean |Δlogit| {np.mean(floor):.4f}")
    for name, s in stats.items():
        print(f"llama.cpp {name:8s} vs transformers+PEFT: mean |Δlogit| {np.mean([a for a, _ in s]):.4f}, argmax agreement {100 * np.mean([b for _, b in s]):.1f}%")
    exported, controlled = np.mean([a for a, _ in stats["export"]]), np.mean([a for a, _ in stats["control"]])
    # Right row order: the export is as close to PEFT as llama.cpp's arithmetic allows, and the
    # control's extra distance is several times the export's.
    ok = exported - np.mean(floor) < 0.25 * (controlled - np.mean(floor))
    print("export within llama.cpp's arithmetic of PEFT; the unpermuted control is not" if ok else "export NOT clearly better than the control")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
