"""How workloads really run: simulated, docker (via agent), kubernetes."""
