"""The utilisation/allocation history (issue 15): the sampling loop (``sampling``), the
agents' readings it uses (``readings``, written by the health loop) and the reads behind
``GET /servers/{id}/history`` and ``GET /fleet/history`` (``history``)."""
