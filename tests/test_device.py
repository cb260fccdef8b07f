"""The one device and precision decision, on machines this one cannot be: GPUs, MPS, ROCm, WSL2, old drivers."""
import subprocess
import sys

import pytest

from clipvid.device import Machine, decide, parse, precision, probe, why_no_gpu
from conftest import ROOT

NVIDIA = Machine(cuda_devices=2, cuda_names=("NVIDIA H100", "NVIDIA A10"), bf16=True, nvml_gpus=2,
                 driver="580.1", driver_cuda="13.0", torch_cuda="13.0")
OLD_DRIVER = Machine(nvml_gpus=1, driver="470.82", driver_cuda="11.4", torch_cuda="13.0",
                     cuda_warning="CUDA initialization: The NVIDIA driver on your system is too old")
CPU_TORCH_ON_GPU_BOX = Machine(nvml_gpus=4, driver="550.1", driver_cuda="12.4", torch_cuda="")
MAC = Machine(mps=True)
ROCM = Machine(cuda_devices=1, cuda_names=("AMD Instinct MI300X",), bf16=True, hip=True)   # NVML sees nothing
WSL2 = Machine(cuda_devices=1, cuda_names=("NVIDIA RTX 4090",), bf16=True, torch_cuda="13.0")  # no NVML, no /proc/driver
LAPTOP = Machine()
OLD_GPU = Machine(cuda_devices=1, cuda_names=("Tesla V100",), bf16=False, nvml_gpus=1, torch_cuda="13.0",
                  driver_cuda="13.0")


@pytest.mark.parametrize("machine,asked,purpose,device,prec", [
    (NVIDIA, "auto", "embed", "cuda", "fp16"),       # CLIP embeds in fp16: the cache stores fp16
    (NVIDIA, "auto", "train", "cuda", "bf16"),
    (NVIDIA, "cuda:1", "train", "cuda:1", "bf16"),   # the same meaning in every command
    (NVIDIA, " CUDA:1 ", "embed", "cuda:1", "fp16"),
    (NVIDIA, "cpu", "train", "cpu", "fp32"),
    (OLD_GPU, "cuda", "train", "cuda", "fp16"),      # no bf16 on a V100: fp16 with loss scaling
    (ROCM, "auto", "train", "cuda", "bf16"),         # ROCm is torch's "cuda"
    (WSL2, "cuda", "embed", "cuda", "fp16"),         # found through torch, not /proc/driver/nvidia
    (MAC, "auto", "embed", "mps", "fp32"),           # auto uses Apple's GPU
    (MAC, "mps", "train", "mps", "fp32"),
    (LAPTOP, "auto", "train", "cpu", "fp32"),
    (LAPTOP, None, "embed", "cpu", "fp32"),
])
def test_decide_picks_device_and_precision(machine, asked, purpose, device, prec):
    d = decide(asked, machine, purpose)
    assert (d.device, d.precision) == (device, prec)
    assert d.why_cpu == ""


def test_the_line_names_the_gpu():
    assert decide("cuda:1", NVIDIA, "embed").line("extract") == "extract: computing on cuda:1 (NVIDIA A10) in fp16"
    assert decide("auto", LAPTOP).line("train") == "train: computing on cpu in fp32"


@pytest.mark.parametrize("machine,words", [
    (OLD_DRIVER, ["driver 470.82", "CUDA 11.4", "needs CUDA 13.0", "wheel index"]),
    (CPU_TORCH_ON_GPU_BOX, ["4 NVIDIA GPU(s)", "CPU-only build"]),
    (Machine(nvml_gpus=1, driver_cuda="13.0", torch_cuda="13.0", cuda_warning="cudaErrorNoDevice"),
     ["cannot use them", "cudaErrorNoDevice"]),
])
def test_auto_says_why_it_falls_back_to_the_cpu_with_a_gpu_present(machine, words):
    d = decide("auto", machine, "train")
    assert (d.device, d.precision) == ("cpu", "fp32")
    line = d.line("train")
    assert line.startswith("train: computing on cpu in fp32; not on the GPU: ")
    for w in words:
        assert w in line, line
    assert "\n" not in line
    with pytest.raises(ValueError) as err:     # asked for the GPU by name: the same reason, as an error
        decide("cuda", machine)
    assert words[0] in str(err.value)
    assert decide("cpu", machine).why_cpu == ""  # the CPU by choice needs no excuse


@pytest.mark.parametrize("machine,asked,words", [
    (LAPTOP, "cuda", "no CUDA or ROCm GPU"),
    (NVIDIA, "cuda:2", "2 GPU(s) here, numbered 0 to 1"),
    (LAPTOP, "mps", "no usable Apple MPS"),
    (NVIDIA, "mps", "no usable Apple MPS"),
    (MAC, "gpu", "unknown device 'gpu'"),
    (MAC, "mps:0", "unknown device"),
    (NVIDIA, "cuda:-1", "unknown device"),
])
def test_impossible_devices_are_refused_in_one_line(machine, asked, words):
    with pytest.raises(ValueError) as err:
        decide(asked, machine)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_parse_and_precision_tables():
    assert parse("auto") == ("auto", None) and parse("cuda:3") == ("cuda", 3) and parse(None) == ("auto", None)
    assert precision("cpu", "train", True) == "fp32" and precision("mps", "embed", True) == "fp32"
    assert precision("cuda", "embed", True) == "fp16" and precision("cuda", "train", False) == "fp16"
    assert why_no_gpu(NVIDIA) == "" and why_no_gpu(LAPTOP) == ""
    from clipvid.device import amp_dtype
    assert amp_dtype("cpu", "train") is None and amp_dtype("mps", "embed") is None   # CLIP's weights go float32 there


def test_this_machine_is_probed_through_torch():
    import torch
    m = probe()
    assert m.cuda_devices == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert m.torch_cuda == (torch.version.cuda or "")
    assert decide("auto", m).device in ("cuda", "mps", "cpu")


def test_every_command_refuses_the_same_impossible_device_the_same_way(tmp_path):
    """`--device cuda:7` means the same in every command: here (no such GPU) a usage error naming it."""
    import torch
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs: cuda:7 exists")
    from train.synthetic import write_synthetic_cache
    cache = str(tmp_path / "c.h5")
    write_synthetic_cache(cache, num_classes=2, per_class=2, frames=4, dim=8)
    runs = tmp_path / "runs"
    runs.mkdir()
    commands = [["extract", cache, "--out", str(tmp_path / "x.h5")], ["train", cache, "--out", str(tmp_path / "r")],
                ["evaluate", cache, "--runs", str(runs), "--out", str(tmp_path / "e")],
                ["predict", cache, "--labels", "a,b", "--out", str(tmp_path / "p")]]
    for cmd in commands:
        proc = subprocess.run([sys.executable, "-m", *cmd, "--device", "cuda:7"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env={**__import__("os").environ, "PYTHONPATH": ROOT})
        assert proc.returncode == 2, (cmd, proc.stderr)
        err = proc.stderr.strip()
        assert "cuda:7 asked for" in err and len(err.splitlines()) == 1 and "Traceback" not in err, (cmd, err)


def test_a_computing_command_says_where_it_computes_once(tmp_path):
    """train prints the one device line (stderr); --quiet keeps it back unless it explains a CPU fallback."""
    import os
    from train.synthetic import write_synthetic_cache
    cache = str(tmp_path / "c.h5")
    write_synthetic_cache(cache, num_classes=3, per_class=4, frames=4, dim=8)
    env = {**os.environ, "PYTHONPATH": ROOT}
    expected = decide("auto", probe(), "train").line("train")
    for quiet, shown in (([], True), (["--quiet"], bool(decide("auto", probe()).why_cpu))):
        proc = subprocess.run([sys.executable, "-m", "train", cache, "--head", "meanpool", "--out",
                               str(tmp_path / f"r{len(quiet)}"), *quiet], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines().count(expected) == (1 if shown else 0), proc.stderr
