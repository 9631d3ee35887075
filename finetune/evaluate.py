"""Held-out evaluation: assistant-token perplexity of base vs adapter, and sample generations.

    python -m finetune eval --data data/datasets/support/test.jsonl --adapter support-v1
    python -m finetune eval --data any_chat.jsonl --adapter /path/to/adapter --out report.json

Design: one model load. peft wraps the base model, and `disable_adapter()` gives the base back,
so both numbers come from the same weights, the same batches and the same masking: the loss is
taken over assistant tokens only, exactly the tokens training optimised. Perplexity is
exp(total NLL / total tokens) over the whole file, not a mean of per-conversation perplexities, so
long conversations weigh what they contain. Generations are greedy and side by side. They are
there for a human to read, not for a score.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from finetune.base_model import CHAT_TEMPLATE, MODEL_NAME, default_data_dir
from finetune.data.schema import chat_messages, read_jsonl


def resolve_adapter(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if (path / "adapter_config.json").is_file():
        return path
    local = default_data_dir() / "adapters" / name_or_path
    if (local / "adapter_config.json").is_file():
        return local
    raise FileNotFoundError(
        f"no adapter at {name_or_path!r} or {local}; give a folder that holds "
        "adapter_config.json or the name of one under data/adapters/"
    )


def _encode(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict[str, Any]:
    enc = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = enc["input_ids"][:max_length], enc["assistant_masks"][:max_length]
    return {"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask, strict=True)]}


def _nll(model: Any, batches: list[list[dict[str, Any]]], pad_id: int) -> tuple[float, int]:
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            width = max(len(x["input_ids"]) for x in batch)
            ids = torch.tensor(
                [x["input_ids"] + [pad_id] * (width - len(x["input_ids"])) for x in batch]
            )
            labels = torch.tensor(
                [x["labels"] + [-100] * (width - len(x["labels"])) for x in batch]
            )
            attn = (
                torch.arange(width)[None, :]
                < torch.tensor([len(x["input_ids"]) for x in batch])[:, None]
            ).long()
            logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), target, ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((target != -100).sum())
    return total, count


def _generate(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new: int) -> str:
    import torch

    prompt = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    ids = torch.tensor([prompt["input_ids"]])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new,
            pad_token_id=tokenizer.pad_token_id,
        )
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()


def evaluate(
    data: Path,
    adapter: Path,
    *,
    base: str | None = None,
    limit: int | None = None,
    samples: int = 3,
    batch_size: int = 4,
    max_length: int = 1024,
    max_new_tokens: int = 48,
    extra_adapters: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Perplexity of the base, `adapter`, and optionally other adapters (e.g. the previous
    version, for the gate) on the same batches."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    base = base or str(default_data_dir() / "models" / MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if "{% generation %}" not in (tokenizer.chat_template or ""):
        tokenizer.chat_template = CHAT_TEMPLATE
    convs = list(read_jsonl(data))[:limit]
    if not convs:
        raise ValueError(f"{data} holds no conversations")
    encoded = [_encode(tokenizer, chat_messages(c), max_length) for c in convs]
    encoded.sort(key=lambda x: len(x["input_ids"]))  # less padding per batch
    batches = [encoded[i : i + batch_size] for i in range(0, len(encoded), batch_size)]

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
    model = PeftModel.from_pretrained(model, str(adapter), adapter_name="candidate").eval()
    for name, path in (extra_adapters or {}).items():
        model.load_adapter(str(path), adapter_name=name)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    with model.disable_adapter():
        base_nll, tokens = _nll(model, batches, pad)
    results = {"base": base_nll}
    for name in ["candidate", *(extra_adapters or {})]:
        model.set_adapter(name)
        results[name] = _nll(model, batches, pad)[0]
    ppl = {k: math.exp(v / max(tokens, 1)) for k, v in results.items()}

    generations = []
    for conv in convs[:samples]:
        msgs = chat_messages(conv)
        cut = next(i for i in range(len(msgs) - 1, -1, -1) if msgs[i]["role"] == "assistant")
        prompt, reference = msgs[:cut], msgs[cut]["content"]
        model.set_adapter("candidate")
        with model.disable_adapter():
            base_text = _generate(model, tokenizer, prompt, max_new_tokens)
        generations.append(
            {
                "conversation_id": conv.conversation_id,
                "last_user": prompt[-1]["content"][:300],
                "reference": reference[:300],
                "base": base_text,
                "adapter": _generate(model, tokenizer, prompt, max_new_tokens),
            }
        )
    return {
        "data": str(data),
        "conversations": len(convs),
        "assistant_tokens": tokens,
        "base_model": base,
        "adapter": str(adapter),
        "perplexity": {
            "base": round(ppl["base"], 4),
            "adapter": round(ppl["candidate"], 4),
            **{k: round(v, 4) for k, v in ppl.items() if k not in ("base", "candidate")},
        },
        "ratio": round(ppl["candidate"] / ppl["base"], 4),
        "reduction": round(1 - ppl["candidate"] / ppl["base"], 4),
        "generations": generations,
        "seconds": round(time.time() - started, 1),
    }


def run(args: Any) -> int:
    report = evaluate(
        Path(args.data),
        resolve_adapter(args.adapter),
        base=args.base,
        limit=args.limit,
        samples=args.samples,
    )
    out = Path(args.out) if args.out else resolve_adapter(args.adapter) / "eval_report.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    p = report["perplexity"]
    print(
        f"assistant-token perplexity on {report['conversations']} conversations "
        f"({report['assistant_tokens']} tokens): base {p['base']:.3f}  adapter "
        f"{p['adapter']:.3f}  ratio {report['ratio']:.3f} ({report['reduction']:.1%} lower)"
    )
    for g in report["generations"]:
        print(
            f"\n--- {g['conversation_id']}\nuser:      {g['last_user'][:160]}\n"
            f"reference: {g['reference'][:160]}\nbase:      {g['base'][:160]}\n"
            f"adapter:   {g['adapter'][:160]}"
        )
    print(f"\nreport: {out}")
    return 0
