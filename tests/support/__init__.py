"""Test support: real servers (PostgreSQL, Redis) started from the machine's own binaries."""
