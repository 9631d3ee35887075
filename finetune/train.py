"""LoRA supervised fine-tuning recipe (TRL `SFTTrainer`), loss on assistant tokens only.

```bash
# the default support adapter, as `make adapters` runs it (CPU, a few minutes):
python -m finetune train --config finetune/recipes/support-v1.yaml
# any field can be overridden on the command line, e.g. a quick smoke run:
python -m finetune train --config finetune/recipes/support-v1.yaml --max_steps 4 --output_dir /tmp/a
# GPU, a larger base model, bf16:
python -m finetune train --config finetune/recipes/support-v1.yaml \
    --model_name_or_path Qwen/Qwen2.5-7B-Instruct --bf16 --per_device_train_batch_size 16
```

Design: one schema for CLI and YAML, as TRL's `scripts/sft.py` does: our `SupportDataArgs` plus
TRL's own `SFTConfig` (optimiser, steps, checkpoints, seed, `resume_from_checkpoint`) and
`ModelConfig` (LoRA rank, alpha, target modules), parsed by `TrlParser`. We add what TRL leaves
out: the chat template that marks assistant spans (see `base_model.CHAT_TEMPLATE`), a guard
against `modules_to_save` (vLLM refuses such adapters), and a `training_summary.json` beside the
adapter that the eval gate and the adapter card read. Heavy imports stay inside `main`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SupportDataArgs:
    train_file: str = field(
        default="data/datasets/support/train.jsonl",
        metadata={"help": "Chat JSONL in our schema (finetune/data/schema.py)."},
    )
    eval_file: str | None = field(
        default="data/datasets/support/val.jsonl",
        metadata={"help": "Held-out JSONL for eval loss; empty to skip."},
    )
    adapter_name: str = field(
        default="support-v1", metadata={"help": "Name the adapter is published under."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Cap on training conversations."}
    )
    use_template: bool = field(
        default=True,
        metadata={
            "help": "Use the training-compatible template of base_model.py (SmolLM2 base). "
            "Turn off for bases whose own template already has {% generation %} markers."
        },
    )


def make_parser(prog: str | None = None) -> Any:
    from trl import ModelConfig, SFTConfig, TrlParser

    return TrlParser((SupportDataArgs, SFTConfig, ModelConfig), prog=prog)


def _load_split(path: str, limit: int | None) -> Any:
    from datasets import Dataset

    from finetune.data.schema import chat_messages, read_jsonl

    rows = [{"messages": chat_messages(c)} for c in read_jsonl(Path(path))]
    if not rows:
        raise ValueError(f"{path} holds no conversations; run `python -m finetune data` first")
    return Dataset.from_list(rows[:limit] if limit else rows)


def main(data_args: SupportDataArgs, training_args: Any, model_args: Any) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    from finetune.base_model import CHAT_TEMPLATE

    if getattr(model_args, "lora_modules_to_save", None):
        raise ValueError("lora_modules_to_save is not allowed: vLLM refuses adapters that carry it")
    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required (a folder or a Hugging Face id)")
    training_args.assistant_only_loss = True
    training_args.report_to = []
    started = time.time()

    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    if data_args.use_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    dtype = torch.bfloat16 if training_args.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, dtype=dtype)
    peft_config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules or ALL_LINEAR,
        task_type="CAUSAL_LM",
    )
    train = _load_split(data_args.train_file, data_args.max_train_samples)
    evaluation = _load_split(data_args.eval_file, None) if data_args.eval_file else None
    if evaluation is None:
        training_args.eval_strategy = "no"

    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    out = Path(training_args.output_dir)
    trainer.model.save_pretrained(out)  # adapter only: adapter_config.json + safetensors
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    metrics = trainer.evaluate() if evaluation is not None else {}
    summary = {
        "adapter_name": data_args.adapter_name,
        "base_model": str(model_args.model_name_or_path),
        "train_conversations": len(train),
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_loss": result.training_loss,
        "eval_loss": metrics.get("eval_loss"),
        "seconds": round(time.time() - started, 1),
        "data": asdict(data_args),
        "lora": {
            "r": peft_config.r,
            "alpha": peft_config.lora_alpha,
            "targets": sorted(peft_config.target_modules),
        },
        "training": {
            k: getattr(training_args, k)
            for k in (
                "learning_rate",
                "num_train_epochs",
                "max_steps",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "max_length",
                "seed",
                "bf16",
            )
        },
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def run(argv: list[str]) -> int:
    parser = make_parser(prog="python -m finetune train")
    data_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    summary = main(data_args, training_args, model_args)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "adapter_name",
                    "steps",
                    "first_loss",
                    "last_loss",
                    "eval_loss",
                    "seconds",
                )
            },
            indent=2,
        )
    )
    return 0
