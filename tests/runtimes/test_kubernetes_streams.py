"""The kubernetes runtime's exec translation between the agent's exec protocol (what the
user speaks) and Kubernetes' channel subprotocol (what the API server speaks): pure
functions, with properties over hostile input and the Status objects kubelets send
(tests/kube/fixtures/exec_status.json)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kube.fake_apiserver import load_fixture

from gpuyard.runtimes.kubernetes.streams import (
    CLOSE,
    MAX_TERMINAL_CELLS,
    RESIZE,
    STDIN,
    exec_url,
    final_message,
    translate,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_stdin_resize_and_eof_become_their_channels() -> None:
    assert translate(b"ls\n", v5=True) == [b"\x00ls\n"]
    assert translate(json.dumps({"type": "stdin", "data": "é"}), v5=False) == [
        bytes([STDIN]) + "é".encode()
    ]
    resize = translate(json.dumps({"type": "resize", "rows": 24, "cols": 80}), v5=True)
    assert resize == [bytes([RESIZE]) + b'{"Width": 80, "Height": 24}']
    assert translate(json.dumps({"type": "eof"}), v5=True) == [bytes([CLOSE, STDIN])]
    assert translate(json.dumps({"type": "eof"}), v5=False) == []  # v4 cannot


@given(frame=st.binary() | st.text() | json_values.map(json.dumps), v5=st.booleans())
def test_any_user_frame_becomes_only_stdin_a_sane_resize_or_a_close(
    frame: bytes | str, v5: bool
) -> None:
    for message in translate(frame, v5=v5):
        channel, payload = message[0], message[1:]
        assert channel in (STDIN, RESIZE, CLOSE)
        if channel == RESIZE:
            size = json.loads(payload)
            assert set(size) == {"Width", "Height"}
            assert all(isinstance(v, int) and 0 < v <= MAX_TERMINAL_CELLS for v in size.values())
        if channel == CLOSE:
            assert v5
            assert payload == bytes([STDIN])


@given(rows=st.integers(), cols=st.integers() | st.floats() | st.text() | st.booleans())
def test_a_resize_out_of_range_or_not_a_number_is_dropped(rows: int, cols: Any) -> None:
    sent = translate(json.dumps({"type": "resize", "rows": rows, "cols": cols}), v5=True)
    valid = (
        isinstance(cols, int)
        and not isinstance(cols, bool)
        and 0 < rows <= MAX_TERMINAL_CELLS
        and 0 < cols <= MAX_TERMINAL_CELLS
    )
    assert (sent != []) == valid


def test_the_recorded_statuses_become_exit_codes_or_an_error() -> None:
    shapes = load_fixture("exec_status.json")
    nonzero = json.loads(json.dumps(shapes["non_zero_exit"]).replace("{code}", "137"))
    missing = json.loads(json.dumps(shapes["not_found"]).replace("{program}", "nvidia-smi"))

    assert final_message(json.dumps(shapes["success"]).encode()) == {
        "type": "exit",
        "exit_code": 0,
    }
    assert final_message(json.dumps(nonzero).encode()) == {"type": "exit", "exit_code": 137}
    error = final_message(json.dumps(missing).encode())
    assert error["type"] == "error"
    assert "nvidia-smi" in str(error["detail"])


@given(data=st.binary() | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_status_bytes_end_the_session_with_an_exit_or_an_error(data: bytes) -> None:
    final = final_message(data)
    assert final["type"] in ("exit", "error")
    if final["type"] == "exit":
        assert isinstance(final["exit_code"], int)
    else:
        assert len(str(final["detail"])) <= 1000


def test_the_exec_url_asks_a_tty_in_the_replica_container_with_each_argument() -> None:
    url = exec_url("https://10.0.0.1:6443/", "prod-team", "gpuyard-ab-0", ["sh", "-c", "a b&c"])

    assert url.startswith("wss://10.0.0.1:6443/api/v1/namespaces/prod-team/pods/gpuyard-ab-0/")
    assert "container=replica" in url
    assert "tty=true" in url
    assert "stderr=false" in url
    assert url.endswith("command=sh&command=-c&command=a+b%26c")
