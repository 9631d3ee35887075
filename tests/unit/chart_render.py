"""Rendering k8s/supportserve with Helm's Go SDK, shared by the chart tests: `render` returns
the documents, NOTES.txt and the whole text of one `helm template` (the `chart` fixture that
loads the chart is in tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

Doc = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "supportserve"
RELEASE, NAMESPACE, FULLNAME = "support", "llm", "support-supportserve"


def render(chart: helm.Chart, values: Doc) -> Doc:
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    docs = [d for p, t in out.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t)]
    notes = next(t for p, t in out.items() if p.endswith("NOTES.txt"))
    return {"docs": [d for d in docs if d], "notes": notes, "text": "\n".join(out.values())}
