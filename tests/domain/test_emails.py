"""Email addresses: one validator and one normal form, so lookalike accounts cannot
exist side by side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.emails import InvalidEmail, email_lookup_keys, login_key, normalise_email

ACCEPTED = [
    ("plain", "dev@example.com", "dev@example.com"),
    ("any case, surrounding space", "  Dev@Example.COM ", "dev@example.com"),
    ("plus tag", "dev+ci@example.com", "dev+ci@example.com"),
    ("intranet .local", "admin@gpuyard.local", "admin@gpuyard.local"),
    ("localhost", "Dev@LocalHost", "dev@localhost"),
    ("dotless intranet host", "dev@mailhost", "dev@mailhost"),
    ("idn domain kept as ascii", "dev@bücher.de", "dev@xn--bcher-kva.de"),
    ("idn domain given as ascii", "dev@XN--BCHER-KVA.de", "dev@xn--bcher-kva.de"),
    ("lookalike domain shows", "admin@ex\u0430mple.com", "admin@xn--exmple-4nf.com"),
]

REFUSED = [
    ("zero-width space", "admin\u200b@example.com", "invisible"),
    ("zero-width in domain", "admin@exam\u200bple.com", "invisible"),
    ("zero-width joiner", "ad\u200dmin@example.com", "invisible"),
    ("right-to-left override", "\u202eadmin@example.com", "bidirectional"),
    ("left-to-right isolate", "admin@\u2066example.com", "bidirectional"),
    ("byte order mark", "\ufeffadmin@example.com", "invisible"),
    ("control character", "admin\x07@example.com", "control"),
    ("hangul filler", "admin\u3164@example.com", "invisible"),
    ("cyrillic a before the @", "\u0430dmin@example.com", "must be ASCII"),
    ("fullwidth letters", "\uff41dmin@example.com", "must be ASCII"),
    ("no @", "admin.example.com", "@-sign"),
    ("two @", "a@b@example.com", ""),
    ("display name", "Admin <admin@example.com>", "display name"),
    ("ip literal", "admin@[127.0.0.1]", "bracketed"),
    ("quoted local part", '"a b"@example.com', "quoting"),
    ("space inside", "ad min@example.com", ""),
    ("reserved domain", "admin@example.invalid", "special-use"),
    ("trailing dot", "admin@gpuyard.local.", "period"),
]


@pytest.mark.parametrize(("text", "normal"), [pytest.param(t, n, id=i) for i, t, n in ACCEPTED])
def test_accepted_addresses_have_one_normal_form(text: str, normal: str) -> None:
    assert normalise_email(text) == normal
    assert normalise_email(normal) == normal  # idempotent
    assert login_key(text) == normal
    assert normal in email_lookup_keys(text)


@pytest.mark.parametrize(("text", "why"), [pytest.param(t, w, id=i) for i, t, w in REFUSED])
def test_refused_addresses_say_why(text: str, why: str) -> None:
    with pytest.raises(InvalidEmail) as refused:
        normalise_email(text)
    assert why.lower() in str(refused.value).lower()


def test_lookup_keys_find_accounts_stored_by_earlier_versions() -> None:
    # Earlier versions lower-cased what was typed, Unicode domain included.
    assert email_lookup_keys("Dev@Bücher.de") >= {"dev@bücher.de", "dev@xn--bcher-kva.de"}
    assert login_key("Not An Address") == "not an address"
    assert email_lookup_keys("Not An Address") == {"not an address"}


@given(st.text(min_size=1, max_size=40))
def test_whatever_is_accepted_is_plain_ascii_and_stable(text: str) -> None:
    try:
        normal = normalise_email(text)
    except InvalidEmail:
        return
    assert normal.isascii()
    assert normal == normal.strip().lower()
    assert normalise_email(normal) == normal
