"""bench.trace.constrained_trace: the model-constrained variants of the openb trace."""

from __future__ import annotations

from bench.trace import constrained_trace, load_trace
from gpuyard.domain.resources import GPU_MILLI


def test_a_third_of_gpu_pods_are_pinned_deterministically_to_a_model_that_can_hold_them() -> None:
    trace = load_trace(node_stride=4)
    first = constrained_trace(trace, 1 / 3, seed=1)
    assert first == constrained_trace(trace, 1 / 3, seed=1)  # the seed decides
    assert first != constrained_trace(trace, 1 / 3, seed=2)
    gpu_pods = [(old, new) for old, new in zip(trace.pods, first.pods, strict=True)
                if old.resources.gpu_milli]  # fmt: skip
    pinned = [new for old, new in gpu_pods if new.gpu_model != old.gpu_model]
    assert 0.28 < len(pinned) / len(gpu_pods) < 0.38
    # Pods without a GPU are never pinned; only the model changes.
    for old, new in zip(trace.pods, first.pods, strict=True):
        assert new.resources == old.resources
        assert new.name == old.name
        if not old.resources.gpu_milli:
            assert new.gpu_model == old.gpu_model
    largest: dict[str, int] = {}
    for server in trace.servers:
        if server.gpus:
            model = server.gpus[0].model
            largest[model] = max(largest.get(model, 0), len(server.gpus))
    for pod in pinned:
        assert pod.gpu_model in largest
        assert largest[pod.gpu_model] * GPU_MILLI >= pod.resources.gpu_milli
