"""Does llama.cpp itself apply `lorikeet export --format gguf` of a PEFT adapter as PEFT does?

The CI fixture Tests/LorikeetCLITests/Fixtures/peft-trained (a PEFT-trained LoRA on the tiny
Llama, with PEFT's logits) is exported by Lorikeet to a llama.cpp LoRA GGUF for the
converter-written tiny GGUF, then llama.cpp (llama-cpp-python 0.3.36) runs the base with no
adapter, with our export, and with convert_lora_to_gguf.py's output, and each is compared with
PEFT's logits for the fixture's sequences. Needs a release or debug build of lorikeet.

    ~/.cache/lorikeet-peers/venv/bin/python scripts/verify/llamacpp_peft_trained_lora.py [LORIKEET_BINARY]
On the development machine: no adapter 14.1 from PEFT's adapter logits (0.0016 from PEFT's
base: llama.cpp's own arithmetic), our export 6.4e-05, llama.cpp's converter 6.4e-05.
"""
import os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file
from llama_cpp import Llama

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURE = os.path.join(ROOT, "Tests", "LorikeetCLITests", "Fixtures", "peft-trained")
BASE = os.path.join(ROOT, "Tests", "ArchitecturesTests", "Fixtures", "llama", "model.gguf")
IDS = [[1, 17, 42, 5, 88, 3, 60, 9], [95, 0, 12, 12, 33, 71, 2, 40]]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "lorikeet")
    reference = load_file(os.path.join(FIXTURE, "logits.safetensors"))
    with tempfile.TemporaryDirectory() as scratch:
        ours = os.path.join(scratch, "ours.gguf")
        subprocess.run([binary, "export", "--adapter", FIXTURE, "--format", "gguf", "--model", BASE, "--output", ours], check=True)
        for label, lora in [("no adapter", None), ("lorikeet export", ours),
                            ("convert_lora_to_gguf.py", os.path.join(FIXTURE, "llama-cpp-lora.gguf"))]:
            llm = Llama(BASE, logits_all=True, n_ctx=32, verbose=False, n_threads=1, **({"lora_path": lora} if lora else {}))
            worst = 0.0
            for n, ids in enumerate(IDS):
                llm.reset()
                llm.eval(ids)
                worst = max(worst, float(np.abs(np.array(llm.scores[:len(ids)]) - reference["adapter"][n]).max()))
            print(f"{label:>24}: max |llama.cpp - PEFT| = {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
