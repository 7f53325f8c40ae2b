"""runtime.device, pose.ultralytics.device and predict --device: one validated type (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cli import app
from model.distributed import pick_device
from pipeline import params
from pipeline.pose import PoseConfig


@pytest.mark.parametrize("good", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_good_names_pass(good: str) -> None:
    assert params.check_device(good) == good


@pytest.mark.parametrize("bad", ["gpu", "0", "CUDA", "cuda:", "cuda:x", "cuda1", " cpu", "tpu"])
def test_runtime_device_refused_in_one_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(f"runtime:\n  device: '{bad}'\npose:\n  ultralytics:\n    device: cpu\n")
    with pytest.raises(params.ParamsError) as err:
        params.runtime(path)
    message = str(err.value)
    assert "\n" not in message and "runtime.device" in message and "expected auto, cpu, cuda, cuda:N" in message


def test_pose_device_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pose:\n  ultralytics:\n    device: gpu\n")
    with pytest.raises(params.ParamsError, match="pose.ultralytics.device"):
        params.section("pose", PoseConfig, path)


def test_cuda_index_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda:1 stays GPU 1 (it became cuda:0 before); the device's existence is checked."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda:1")
    assert pick_device("cuda", local_rank=1) == torch.device("cuda:1")
    with pytest.raises(params.UserError, match="has 2 CUDA device"):
        pick_device("cuda:2")
    with pytest.raises(params.UserError, match="ambiguous"):
        pick_device("cuda:1", local_rank=0, world_size=2)


def test_cuda_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(params.UserError, match="CUDA is not available"):
        pick_device("cuda:0")
    assert pick_device("auto") == torch.device("cpu")


def test_predict_device_option_refused_by_cli(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "a.png"), "--device", "gpu"])
    assert result.exit_code == 2
    assert "expected auto, cpu, cuda, cuda:N" in result.output
