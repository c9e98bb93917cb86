"""Typer commands: the server, and a client for the REST API."""
