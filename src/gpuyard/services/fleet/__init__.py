"""Fleet: clusters and the servers in them.

Owns registering (in the shape the runtime of the cluster's kind takes; a server whose
runtime reports its inventory in ``reported_servers``), listing, changing and removing
clusters and servers, server status and its events, the local docker server of `gpuyard
serve`, the agent clients, and the health loop that probes servers and takes silent ones
offline.
"""
