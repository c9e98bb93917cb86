"""The agent's HTTP and WebSocket routes (thin: parse, call the manager, return a model)."""
