"""The root conftest's CI rule: in CI a skipped integration test fails the run.

Each case runs the real tests/conftest.py in a fresh inner pytest session.
"""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).parents[1] / "conftest.py"
INNER_TESTS = """
import pytest

@pytest.mark.integration
def test_integration_skips():
    pytest.skip("no dockerd here")

def test_plain_skip():
    pytest.skip("not an integration test")

@pytest.mark.integration
@pytest.mark.xfail(reason="known bug")
def test_integration_xfail():
    assert False

def test_uses_redis(redis_server):
    pass

def test_asks_for_redis_at_run_time(request):
    request.getfixturevalue("redis_server")

@pytest.mark.integration
def test_integration_passes():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makepyfile(test_inner=INNER_TESTS)
    # An empty PATH: redis-server is "not installed", so redis_server skips.
    monkeypatch.setenv("PATH", str(pytester.path))
    # Third-party plugins are not under test and cost ~1 s per inner session.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_in_ci_a_skipped_integration_test_fails(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    result = inner.runpytest("-p", "no:cacheprovider")
    # A skip during the test fails it; a skip while setting up its fixtures errors its setup.
    result.assert_outcomes(passed=1, failed=2, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "FAILED *::test_integration_skips - integration test skipped in CI: no dockerd here",
            "ERROR *::test_uses_redis - integration test skipped in CI: redis-server not found*",
            "FAILED *::test_asks_for_redis_at_run_time - integration test skipped in CI: redis*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_integration_tests_skip_with_a_visible_reason(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = inner.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_inner.py:*: no dockerd here",
            "SKIPPED [[]1[]] test_inner.py:*: not an integration test",
            "SKIPPED [[]1[]] test_inner.py:*: redis-server not found on PATH; install *",
        ]
    )
    assert result.stdout.str().count("redis-server not found on PATH") == 2
    assert result.ret == pytest.ExitCode.OK
