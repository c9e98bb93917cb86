"""Fleet: clusters and the servers in them.

Owns registering, listing, changing and removing clusters and servers, server status and
its events, docker servers' inventory, the local docker server of `gpuyard serve`, the
agent clients, and the health loop that probes servers and takes silent ones offline.
"""
