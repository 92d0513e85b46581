"""One pass of the Hugging Face LoRA/QLoRA stack over pre-tokenized examples, batched the way
its default supervised collator does: each batch padded to its longest example
(transformers' DataCollatorForSeq2Seq, labels padded with -100). The examples come from
`lorikeet bench epoch`, so both sides train on the same token ids and the same trained
positions; only the batching differs (Lorikeet packs).

env: MODEL (HF folder), DATA (JSONL: {"input_ids": [...], "labels": [...]}, -100 = not trained),
     MODE = fp32 | bf16 | nf4, B, R, ALPHA, DROPOUT, LR, THREADS
prints one line: 'peft-epoch MODE: N examples, T tokens (P padded), S s, maxrss Z MiB'"""
import json, os, resource, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, DataCollatorForSeq2Seq
from peft import LoraConfig, get_peft_model

mode = os.environ.get("MODE", "fp32")
B, R = int(os.environ.get("B", 4)), int(os.environ.get("R", 16))
alpha, dropout = float(os.environ.get("ALPHA", 2 * R)), float(os.environ.get("DROPOUT", 0.0))
lr = float(os.environ.get("LR", 2e-4))
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
path = os.environ.get("MODEL", os.path.expanduser("~/.cache/lorikeet-peers/smollm2-hf"))

with open(os.environ["DATA"]) as f:
    examples = [json.loads(line) for line in f if line.strip()]

kw = {"torch_dtype": torch.float32}
if mode == "nf4":
    kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32)
    kw["device_map"] = "cpu"
model = AutoModelForCausalLM.from_pretrained(path, **kw)
targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
model = get_peft_model(model, LoraConfig(r=R, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, task_type="CAUSAL_LM"))
model.train()
tokenizer = AutoTokenizer.from_pretrained(path)
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100, return_tensors="pt")
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

real = padded = 0
start = time.perf_counter()
for i in range(0, len(examples), B):
    chunk = examples[i:i + B]
    batch = collate([{"input_ids": e["input_ids"], "attention_mask": [1] * len(e["input_ids"]), "labels": e["labels"]} for e in chunk])
    real += sum(len(e["input_ids"]) for e in chunk)
    padded += batch["input_ids"].numel()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=(mode == "bf16")):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"peft-epoch {mode}: {len(examples)} examples, {real} tokens ({padded} padded), {seconds:.1f} s, maxrss {rss:.0f} MiB")
