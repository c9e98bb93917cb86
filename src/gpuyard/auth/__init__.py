"""Passwords, tokens, roles and the permission policy."""
