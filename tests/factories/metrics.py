"""Scraping GET /metrics and reading it with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


class _Getter(Protocol):
    def get(self, url: str, **kwargs: object) -> object: ...


def parse_samples(text: str) -> dict[str, list[Sample]]:
    """Every sample of a scrape by its sample name (``..._total``, ``..._bucket``...)."""
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def family_names(text: str) -> set[str]:
    """The metric family names of a scrape, and every sample name (the names PromQL
    can select: ``x_total``, ``x_bucket``, ``x_count``, ``x_sum`` as well as ``x``)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def value(samples: Mapping[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [s for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return float(found[0].value)


def by_label(
    samples: Mapping[str, list[Sample]], name: str, *keys: str
) -> dict[tuple[str, ...], float]:
    """``name``'s samples keyed by the values of ``keys``."""
    return {tuple(s.labels[k] for k in keys): float(s.value) for s in samples.get(name, [])}
