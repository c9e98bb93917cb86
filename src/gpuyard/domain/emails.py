"""Email addresses: one validator and one normal form for every place an address enters
(registration, accounts made by admins, invites, the first admin, the login lookup).

An account is named by its address, so two addresses that look alike must not both be
possible. The rules, in order:

- surrounding spaces are dropped; control characters (tabs and newlines included),
  invisible (zero-width, format) characters and bidirectional overrides are refused
  anywhere: they hide in a name without showing (``admin\\u200b@example.com``,
  ``\\u202eadmin@...``);
- the address must pass ``email-validator`` (syntax only, no DNS): no display names,
  quoted local parts or IP-literal domains, and the part before the ``@`` is ASCII, so
  ``\\u0430dmin@example.com`` (a Cyrillic ``a``) is refused instead of passing as ``admin``;
- the normal form is the ASCII one, lower-cased: an internationalised domain is kept in
  its IDNA (``xn--``) form, so a lookalike domain reads as what it is. The same input in
  any case, or the Unicode and ASCII forms of one domain, give the same normal form.

Intranet names (``.local``, ``localhost``) are accepted, which email-validator refuses as
special-use domains: self-hosted installations use them (the default first admin is
``admin@gpuyard.local``).
"""

from __future__ import annotations

import contextlib
import unicodedata

from email_validator import EmailNotValidError, validate_email

#: Unicode categories that never belong in an address: control, format (zero-width
#: spaces and joiners, bidirectional marks, overrides and isolates, the BOM), line and
#: paragraph separators, surrogates, private use and unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
#: Letters that render as nothing (Hangul fillers, braille blank).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: Special-use top-level names accepted for self-hosted installations.
_INTRANET_NAMES = frozenset({"local", "localhost"})
#: Stands in for an intranet name while email-validator checks the rest.
_PLACEHOLDER = "gpuyard-intranet-name"


class InvalidEmail(ValueError):
    """The address is not one gpuyard accepts; the message says why."""


def normalise_email(text: str) -> str:
    """The normal form of ``text`` as an account address; InvalidEmail otherwise."""
    return _forms(text)[0]


def login_key(text: str) -> str:
    """What a login names: the normal form, or for text that is no valid address (an
    account stored by an earlier version may be one) the text lower-cased."""
    try:
        return normalise_email(text)
    except InvalidEmail:
        return text.strip().lower()


def email_lookup_keys(text: str) -> set[str]:
    """Every form under which an account for ``text`` may be stored: the normal form, the
    form with a Unicode domain, and the lower-cased address as earlier versions stored
    it. Used to find an account and to refuse a second one for one address."""
    keys = {text.strip().lower()}
    with contextlib.suppress(InvalidEmail):
        keys.update(_forms(text))
    return keys


def _forms(text: str) -> tuple[str, str]:
    """(the normal form, the same with the domain in Unicode)."""
    text = text.strip(" ")  # spaces only: a newline or tab is refused below
    for char in text:
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES or char in _BLANK_LETTERS:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise InvalidEmail(
                f"must not contain control, invisible or bidirectional characters ({name})"
            )
    local, at, domain = text.rpartition("@")
    labels = domain.split(".")
    intranet = labels[-1].lower() if at and labels[-1].lower() in _INTRANET_NAMES else None
    probe = f"{local}@{'.'.join([*labels[:-1], _PLACEHOLDER])}" if intranet else text
    try:
        checked = validate_email(
            probe,
            check_deliverability=False,
            allow_smtputf8=False,  # an ASCII local part: no lookalike letters before the @
            globally_deliverable=False,  # intranet host names without a dot are fine
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(_reason(str(exc))) from None
    forms = ((checked.ascii_email or checked.normalized).lower(), checked.normalized.lower())
    if intranet:
        return (
            forms[0].removesuffix(_PLACEHOLDER) + intranet,
            forms[1].removesuffix(_PLACEHOLDER) + intranet,
        )
    return forms


def _reason(message: str) -> str:
    # email-validator's sentences, with the stand-in name put back and a plainer word for
    # the ASCII rule.
    message = message.replace(_PLACEHOLDER, "local").rstrip(".")
    prefix, _, found = message.partition(": ")
    if prefix.startswith("Internationalized characters before the @-sign"):
        return f"the part before the @ must be ASCII (found {found})"
    return message[:1].lower() + message[1:] if message else "is not a valid email address"
