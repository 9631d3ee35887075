"""Command line: `python -m finetune <command> --help`.

    python -m finetune base-model                        # build/verify the SmolLM2 model folder
    python -m finetune data --synthetic 800 --out data/datasets/support
    python -m finetune data --input export.json --format zendesk --out data/datasets/acme
    python -m finetune train --config finetune/recipes/support-v1.yaml [--max_steps 4 ...]

    python -m finetune eval --data data/datasets/support/test.jsonl --adapter support-v1
    python -m finetune publish --adapter data/adapters/support-v1 --family support \\
        --eval-data data/datasets/support/val.jsonl --alias support

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


def cmd_gate(args: argparse.Namespace) -> int:
    from finetune.publish import CARD, gate, make_card

    adapter = Path(args.adapter)
    report, decision = gate(
        adapter,
        Path(args.eval_data),
        min_improvement=args.min_improvement,
        max_regression=args.max_regression,
        limit=args.limit,
        base=args.base,
    )
    card = make_card(adapter, report, decision, name=args.name or adapter.name, family=args.family)
    (adapter / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    print("\n".join(decision.rules))
    print(f"{'PASSED' if decision.passed else 'REFUSED'}: card written to {adapter / CARD}")
    return 0 if decision.passed else 2


def cmd_publish(args: argparse.Namespace) -> int:
    from finetune.publish import GateRefused, publish
    from serving.config import ServingConfig
    from serving.store import AdapterStore

    store = AdapterStore(ServingConfig.from_yaml(args.serving_config).store)
    try:
        card = publish(
            Path(args.adapter),
            args.family,
            Path(args.eval_data),
            store,
            min_improvement=args.min_improvement,
            max_regression=args.max_regression,
            alias=args.alias,
            canary=args.canary,
            limit=args.limit,
            base=args.base,
        )
    except GateRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n".join(card["gate"]["rules"]))
    print(f"published {card['name']}" + (f"; alias {args.alias} updated" if args.alias else ""))
    return 0


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--adapter", required=True, help="adapter folder (training output)")
    p.add_argument("--eval-data", required=True, help="held-out chat JSONL (the val split)")
    p.add_argument(
        "--min-improvement",
        type=float,
        default=0.2,
        help="required relative perplexity cut vs the base (default 0.2 = 20%%)",
    )
    p.add_argument(
        "--max-regression",
        type=float,
        default=0.0,
        help="allowed relative perplexity rise vs the previous version (default 0)",
    )
    p.add_argument("--limit", type=int, default=None, help="score the first N conversations")
    p.add_argument(
        "--base", default=None, help="base model folder or hub id (default: the SmolLM2 folder)"
    )


def cmd_triage_data(args: argparse.Namespace) -> int:
    from finetune.triage import build

    print(json.dumps(build(Path(args.src), Path(args.out), seed=args.seed)))
    return 0


def cmd_eval_triage(args: argparse.Namespace) -> int:
    import os

    from finetune.triage import evaluate_served

    report = evaluate_served(
        args.base_url,
        args.model,
        Path(args.data),
        limit=args.limit,
        api_key=os.environ.get("OPENAI_API_KEY", "unused"),
    )
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def cmd_redaction_eval(args: argparse.Namespace) -> int:
    from finetune.data.redact_eval import evaluate, evaluate_labelled

    report = {"planted_synthetic": evaluate(args.n, seed=args.seed)}
    for path in args.labelled:
        report[Path(path).stem] = evaluate_labelled(Path(path))
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n")
    for name, r in report.items():
        print(
            f"{name}: recall {r['recall']:.4f} precision {r['precision']:.4f} "
            f"({r['planted']} planted)"
        )
    return 0


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

    gt = sub.add_parser("gate", help="evaluate an adapter and write its card (no upload)")
    _gate_args(gt)
    gt.add_argument("--name", default=None, help="name recorded in the card")
    gt.add_argument("--family", default=None, help="adapter family recorded in the card")
    gt.set_defaults(func=cmd_gate)

    pub = sub.add_parser("publish", help="gate vs base and previous version, upload as <family>-vN")
    _gate_args(pub)
    pub.add_argument("--family", required=True, help="e.g. support -> support-v1, support-v2, ...")
    pub.add_argument("--alias", default=None, help="point this alias at the new version")
    pub.add_argument(
        "--canary",
        type=int,
        default=None,
        help="with --alias: send this %% of traffic to the new version",
    )
    pub.add_argument(
        "--serving-config",
        default="configs/cpu-dev.yaml",
        help="the store is the one this serving config reads",
    )
    pub.set_defaults(func=cmd_publish)

    re_ = sub.add_parser("redaction-eval", help="recall/precision of PII redaction per type")
    re_.add_argument("--n", type=int, default=1000, help="synthetic conversations to plant PII in")
    re_.add_argument("--seed", type=int, default=12345)
    re_.add_argument(
        "--labelled",
        nargs="*",
        default=["tests/data/pii_holdout.jsonl"],
        help="hand-labelled JSONL files ({text, pii: [{type, value}]})",
    )
    re_.add_argument("--out", default=None, help="write the full JSON report here")
    re_.set_defaults(func=cmd_redaction_eval)

    td = sub.add_parser("triage-data", help="turn a split reply data set into triage examples")
    td.add_argument("--from", dest="src", default="data/datasets/support")
    td.add_argument("--out", default="data/datasets/triage")
    td.add_argument("--seed", type=int, default=0)
    td.set_defaults(func=cmd_triage_data)

    et = sub.add_parser("eval-triage", help="score a served triage adapter (structured output)")
    et.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    et.add_argument("--model", default="base:support-triage-v1")
    et.add_argument("--data", default="data/datasets/triage/test.jsonl")
    et.add_argument("--limit", type=int, default=None)
    et.add_argument("--out", default=None, help="also write the JSON report here")
    et.set_defaults(func=cmd_eval_triage)
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
