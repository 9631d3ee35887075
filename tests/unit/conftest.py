"""Fixtures shared by the chart tests (test_chart.py, test_chart_values.py)."""

from collections.abc import Iterator

import helm_python as helm
import pytest

from tests.unit.chart_render import CHART


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    """k8s/supportserve loaded by Helm's Go SDK, once per test module."""
    with helm.Chart.load(CHART) as loaded:
        yield loaded
