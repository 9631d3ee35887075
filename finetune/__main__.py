"""Command line: `python -m finetune {base-model,data,train} --help`.

    python -m finetune base-model                        # build/verify the SmolLM2 model folder
    python -m finetune data --synthetic 800 --out data/datasets/support
    python -m finetune data --input export.json --format zendesk --out data/datasets/acme
    python -m finetune train --config finetune/recipes/support-v1.yaml [--max_steps 4 ...]

`train` takes TRL's flags (run `python -m finetune train --help` for all of them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_base_model(args: argparse.Namespace) -> int:
    from finetune.base_model import ensure_base_model

    print(ensure_base_model(Path(args.data_dir) if args.data_dir else None))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from finetune.base_model import MODEL_NAME, default_data_dir
    from finetune.data.importers import Imported, ImportReport, import_files
    from finetune.data.pipeline import build
    from finetune.data.synth import generate

    if not args.synthetic and not args.input:
        raise SystemExit("nothing to do: give --input FILE... and/or --synthetic N")
    report = ImportReport()
    items = import_files([Path(p) for p in args.input], args.format, report)
    sources = [f"{len(args.input)} file(s)"] if args.input else []
    if args.synthetic:
        items += [Imported(c) for c in generate(args.synthetic, seed=args.seed)]
        report.kept += args.synthetic
        sources.append(f"synthetic n={args.synthetic} seed={args.seed}")
    tokenizer = (
        Path(args.tokenizer) if args.tokenizer else default_data_dir() / "models" / MODEL_NAME
    )
    summary = build(
        items,
        Path(args.out),
        val=args.val,
        test=args.test,
        dedup_threshold=args.dedup_threshold,
        imported=report,
        tokenizer_dir=tokenizer,
        source=" + ".join(sources),
    )
    print(
        json.dumps(
            {k: summary[k] for k in ("conversations", "splits", "duplicates_removed")}
            | {"skipped": summary["import"]["skipped_by_reason"]}
        )
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from finetune.evaluate import run

    return run(args)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    base = sub.add_parser("base-model", help="build and verify the default base model folder")
    base.add_argument("--data-dir", default=None, help="defaults to $DATA_DIR or ./data")
    base.set_defaults(func=cmd_base_model)

    data = sub.add_parser("data", help="generate/import, clean and split conversations")
    data.add_argument("--input", nargs="*", default=[], help="files to import")
    data.add_argument(
        "--format",
        choices=["jsonl", "csv", "zendesk"],
        default=None,
        help="input format (default: guessed per file)",
    )
    data.add_argument("--synthetic", type=int, default=0, help="generate N synthetic conversations")
    data.add_argument(
        "--dedup-threshold",
        type=float,
        default=0.9,
        help="Jaccard similarity above which a conversation is a near-duplicate",
    )
    data.add_argument("--tokenizer", default=None, help="model folder for token-length stats")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", default="data/datasets/support")
    data.add_argument("--val", type=float, default=0.1)
    data.add_argument("--test", type=float, default=0.1)
    data.set_defaults(func=cmd_data)

    sub.add_parser("train", help="LoRA SFT (TRL flags; --config recipe.yaml)", add_help=False)

    ev = sub.add_parser(
        "eval", help="assistant-token perplexity, base vs adapter, on any chat JSONL"
    )
    ev.add_argument("--data", required=True, help="chat JSONL (our schema or {'messages': [...]})")
    ev.add_argument("--adapter", required=True, help="adapter folder, or a name in data/adapters/")
    ev.add_argument("--base", default=None, help="base model (default: the SmolLM2 folder)")
    ev.add_argument("--limit", type=int, default=None, help="first N conversations only")
    ev.add_argument("--samples", type=int, default=3, help="side-by-side generations to show")
    ev.add_argument("--out", default=None, help="report path (default: <adapter>/eval_report.json)")
    ev.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from finetune.train import run

        return run(argv[1:])
    args = make_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
