"""Warm pools: specs and admin operations (``specs``), the claim on launch (``claim``)
and the loop that refills pools and keeps their containers' labels (``tending``)."""
