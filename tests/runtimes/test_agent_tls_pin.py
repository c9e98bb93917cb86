"""The agent's TLS pin: only the one certificate given is trusted, and what is not one
certificate is refused naming the field (the end-to-end run over a real agent is
tests/integration/test_agent_install.py)."""

from __future__ import annotations

import pytest
from factories.certificates import self_signed
from pydantic import ValidationError

from gpuyard.agent.settings import AgentSettings
from gpuyard.domain.errors import InvalidInput
from gpuyard.runtimes.docker import fetch_inventory, pinned_tls

_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("not a certificate", id="no PEM"),
        pytest.param(_PEM + _PEM, id="two certificates"),
        pytest.param("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", id="a key"),
    ],
)
def test_what_is_not_one_certificate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="one PEM certificate"):
        pinned_tls(text)


def test_a_pinned_context_trusts_no_public_ca() -> None:
    context = pinned_tls(self_signed())
    assert context.cert_store_stats() == {"crl": 0, "x509": 1, "x509_ca": 0}  # only it


@pytest.mark.parametrize(
    ("url", "cert", "field"),
    [
        pytest.param("http://127.0.0.1:1", "x", "agent_tls_cert", id="a certificate for http"),
        pytest.param("https://127.0.0.1:1", _PEM, "agent_tls_cert", id="an unreadable one"),
    ],
)
def test_registration_names_the_certificate_field(url: str, cert: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        fetch_inventory(url, "t" * 32, cert)
    assert [e.field for e in refused.value.errors] == [field]


def test_the_agent_takes_both_tls_files_or_neither(tmp_path: object) -> None:
    with pytest.raises(ValidationError, match="both tls_cert and tls_key"):
        AgentSettings(token="t" * 32, tls_cert="/etc/cert.pem")  # type: ignore[arg-type]
    settings = AgentSettings(
        token="t" * 32,  # type: ignore[arg-type]
        tls_cert="/etc/cert.pem",  # type: ignore[arg-type]
        tls_key="/etc/key.pem",  # type: ignore[arg-type]
    )
    assert settings.tls_cert is not None
