"""The live stream behind ``GET /api/v1/stream``: committed changes as events.

This package owns turning what the database says changed (workloads, servers, the
queue), whichever process committed it, into one numbered stream of events per process,
and handing each open stream the events its caller may read:

- ``changes``: what an event says, and the one reader of the database's change marks
  (:class:`~gpuyard.services.live.changes.DatabaseChanges`), behind a
  :class:`~gpuyard.services.live.changes.ChangeSource` seam; the feed uses
  :class:`~gpuyard.services.live.changes.BusChanges`, read when the bus
  (``services/bus``) announces a commit by any process;
- ``feed``: :class:`~gpuyard.services.live.feed.LiveFeed`, one per process: a reader
  thread, the recent history that ``Last-Event-ID`` resumes from, and the fan-out;
- ``subscription``: one open stream: its caller's view of the policy and a bounded
  queue (a client that falls behind is told to resync instead of holding memory).

Nothing here holds a transaction open across a wait, and nothing here is needed for
correctness elsewhere: an event that is late, or a resync, only makes a page refetch.
"""
