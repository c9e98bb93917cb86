"""The secret box: encrypts with a versioned key id, decrypts after rotation, detects
tampering."""

from __future__ import annotations

import pytest

from gpuyard.auth.encryption import SecretBox, SecretUnreadable


def test_round_trip_hides_the_plaintext() -> None:
    box = SecretBox("server-secret-1")
    stored = box.encrypt("agent-token-abc")
    assert stored.startswith(f"gpyenc:v1:{box.key_id}:")
    assert "agent-token-abc" not in stored
    assert box.decrypt(stored) == "agent-token-abc"
    assert box.encrypt("agent-token-abc") != stored  # random IV each time


def test_old_values_decrypt_after_a_rotation_and_can_be_re_encrypted() -> None:
    old = SecretBox("server-secret-1")
    stored = old.encrypt("kubeconfig")
    rotated = SecretBox("server-secret-2", previous_secrets=["server-secret-1"])
    assert rotated.key_id != old.key_id
    assert rotated.decrypt(stored) == "kubeconfig"
    assert not rotated.is_current(stored)
    fresh = rotated.rotate(stored)
    assert rotated.is_current(fresh)
    assert SecretBox("server-secret-2").decrypt(fresh) == "kubeconfig"


def test_a_missing_key_says_which_one() -> None:
    stored = SecretBox("server-secret-1").encrypt("x")
    with pytest.raises(SecretUnreadable, match="not configured"):
        SecretBox("server-secret-2").decrypt(stored)


def test_tampering_is_detected() -> None:
    box = SecretBox("server-secret-1")
    stored = box.encrypt("x")
    forged = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with pytest.raises(SecretUnreadable):
        box.decrypt(forged)
    with pytest.raises(SecretUnreadable):
        box.decrypt("plaintext")
