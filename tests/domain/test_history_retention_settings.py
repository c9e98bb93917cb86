"""Each history level's retention covers the longest window read from it: a shorter one
is refused at start-up, naming the setting, instead of charts with an empty older part."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories.app import make_settings
from pydantic import ValidationError

from gpuyard.domain.usage import (
    MINUTE_BUCKET_S,
    QUARTER_BUCKET_S,
    WINDOW_SECONDS,
    HistoryWindow,
    bucket_for,
    longest_window_served,
)

SETTINGS_LEVELS = [
    ("history_raw_retention_s", 0),
    ("history_minute_retention_s", MINUTE_BUCKET_S),
    ("history_quarter_retention_s", QUARTER_BUCKET_S),
]


def test_the_longest_windows_served() -> None:
    assert longest_window_served(0) == 3600
    assert longest_window_served(MINUTE_BUCKET_S) == 86400
    assert longest_window_served(QUARTER_BUCKET_S) == 30 * 86400


@pytest.mark.parametrize(("name", "level"), SETTINGS_LEVELS)
def test_a_retention_shorter_than_a_window_it_serves_is_refused(
    tmp_path: Path, name: str, level: int
) -> None:
    least = longest_window_served(level)
    with pytest.raises(ValidationError, match=f"GPUYARD_{name.upper()} must be at least {least}"):
        make_settings(tmp_path, None, **{name: least - 1})
    settings = make_settings(tmp_path, None, **{name: least})
    assert getattr(settings, name) == least
    for window in HistoryWindow:  # the default covers every window of its level
        if bucket_for(window) == level:
            assert getattr(make_settings(tmp_path, None), name) >= WINDOW_SECONDS[window]
