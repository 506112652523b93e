"""Each package's public surface is exactly its ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.unit

PACKAGES = ["conveyor.protocol", "conveyor.ciconfig", "conveyor.pipeline", "conveyor.runner"]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, f"{package} exports nothing"
    assert sorted(module.__all__) == sorted(set(module.__all__))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_protocol_surface_is_pinned() -> None:
    import conveyor.protocol as protocol

    assert set(protocol.__all__) == {
        "ConveyorError", "FailureReason", "FeaturesInfo", "GitInfo", "JobFeatures", "JobInfo", "JobOutput",
        "JobPayload", "JobRequest", "JobSpec", "JobStatus", "RegisterRunnerRequest", "RegistrationDetails",
        "ResetTokenResponse", "RunnerInfo", "RunnerInfoPayload", "RunnerTokenRequest", "Step",
        "UnregisterManagerRequest", "UpdateJobRequest", "Variable", "VerifyRunnerRequest", "When",
        "headers", "keepalive", "trace",
    }
