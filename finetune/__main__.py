"""Command line: `python -m finetune {base-model,data,train} --help`.

    python -m finetune base-model                        # build/verify the SmolLM2 model folder
    python -m finetune data --synthetic 800 --out data/datasets/support
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
    from finetune.data.pipeline import build
    from finetune.data.synth import generate

    if not args.synthetic:
        raise SystemExit("nothing to do: give --synthetic N")
    convs = generate(args.synthetic, seed=args.seed)
    summary = build(
        convs,
        Path(args.out),
        val=args.val,
        test=args.test,
        extra={"source": f"synthetic n={args.synthetic} seed={args.seed}", "synthetic": True},
    )
    print(json.dumps({k: summary[k] for k in ("conversations", "splits")}))
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
    data.add_argument("--synthetic", type=int, default=0, help="generate N synthetic conversations")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", default="data/datasets/support")
    data.add_argument("--val", type=float, default=0.1)
    data.add_argument("--test", type=float, default=0.1)
    data.set_defaults(func=cmd_data)

    sub.add_parser("train", help="LoRA SFT (TRL flags; --config recipe.yaml)", add_help=False)
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
