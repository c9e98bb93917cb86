"""Identity: who the caller is, what they may do, and the record of what they did.

Owns users, teams and team invitations, invites and registration, logging in and out,
API tokens, applying the permission policy to stored objects (`access`), and the
tamper-evident audit log every other service writes into.
"""
