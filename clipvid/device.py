"""The one place that decides which torch device and precision a command computes with, and says so."""
import re
import sys
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

DEVICE_HELP = ("auto, cpu, cuda, cuda:N or mps (default auto: a CUDA or ROCm GPU, else Apple's MPS, "
               "else the CPU)")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Machine:
    """What this machine offers, as torch (and NVML, when its bindings are installed) sees it."""
    cuda_devices: int = 0        # GPUs torch can use: NVIDIA through CUDA, AMD through ROCm (HIP)
    cuda_names: Tuple[str, ...] = ()
    bf16: bool = False           # the first usable GPU computes bfloat16 natively
    hip: bool = False            # torch's "cuda" is AMD's ROCm
    mps: bool = False            # Apple's Metal device is built into this torch and usable
    nvml_gpus: int = 0           # NVIDIA GPUs the driver reports, whether or not torch can use them
    driver: str = ""             # NVIDIA driver version, e.g. "535.104.05"
    driver_cuda: str = ""        # newest CUDA that driver runs, e.g. "12.2"
    torch_cuda: str = ""         # CUDA this torch was built for ("" in a CPU-only build)
    cuda_warning: str = ""       # what torch said when it found CUDA unusable


@dataclass(frozen=True)
class Decision:
    """A device string torch accepts and the precision the purpose computes in there."""
    device: str                  # "cpu", "cuda", "cuda:1" or "mps"
    precision: str               # "fp32", "fp16" or "bf16"
    name: str = ""               # the GPU's name, for the one line
    why_cpu: str = ""            # set when a GPU is present but the CPU is used

    def line(self, command: str = "") -> str:
        """The one line every computing command prints."""
        where = f"{self.device} ({self.name})" if self.name else self.device
        text = f"{command + ': ' if command else ''}computing on {where} in {self.precision}"
        return text + (f"; not on the GPU: {self.why_cpu}" if self.why_cpu else "")


def _version_tuple(v: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:2])


def why_no_gpu(m: Machine) -> str:
    """Why torch cannot use the NVIDIA GPU(s) NVML reports, in one clause; "" when none is reported."""
    if not m.nvml_gpus or m.cuda_devices:
        return ""
    if not m.torch_cuda:
        return (f"{m.nvml_gpus} NVIDIA GPU(s) present, but this torch is a CPU-only build; install one "
                "built for CUDA (docs/install.md)")
    if m.driver_cuda and _version_tuple(m.driver_cuda) < _version_tuple(m.torch_cuda):
        return (f"the NVIDIA driver {m.driver or '?'} runs CUDA {m.driver_cuda} at most, but this torch needs "
                f"CUDA {m.torch_cuda}; install torch from the wheel index of CUDA {m.driver_cuda} or older "
                "(docs/install.md), or update the driver")
    said = f": {m.cuda_warning}" if m.cuda_warning else ""
    return f"{m.nvml_gpus} NVIDIA GPU(s) present, but torch (CUDA {m.torch_cuda}) cannot use them{said}"


def precision(device_type: str, purpose: str, bf16: bool) -> str:
    """fp32 on the CPU (runs repeat bit for bit) and on MPS (half precision there is untested);
    on a GPU, CLIP embeds in fp16 (the cache stores fp16 anyway) and heads train in bf16 where the
    GPU has it, else in fp16 with loss scaling."""
    if device_type != "cuda":
        return "fp32"
    if purpose == "embed":
        return "fp16"
    return "bf16" if bf16 else "fp16"


def parse(asked: Optional[str]) -> Tuple[str, Optional[int]]:
    """("auto" | "cpu" | "cuda" | "mps", GPU number or None) of a --device value; ValueError otherwise."""
    text = (asked or "auto").strip().lower()
    match = _DEVICE.match(text)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"unknown device {asked!r}; use {DEVICE_HELP.split(' (')[0]}")
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def decide(asked: Optional[str], m: Machine, purpose: str = "train") -> Decision:
    """The device and precision for `--device asked` on machine `m`; ValueError names what cannot be."""
    kind, index = parse(asked)
    text = kind if index is None else f"cuda:{index}"
    if kind == "auto":
        kind = "cuda" if m.cuda_devices else "mps" if m.mps else "cpu"
    if kind == "cuda":
        if not m.cuda_devices:
            raise ValueError(f"{text} asked for, but torch sees no CUDA or ROCm GPU here"
                             f"{'; ' + why_no_gpu(m) if why_no_gpu(m) else ''}")
        if index is not None and index >= m.cuda_devices:
            raise ValueError(f"{text} asked for, but torch sees {m.cuda_devices} GPU(s) here, numbered 0 to "
                             f"{m.cuda_devices - 1}")
        names = m.cuda_names or ("",)
        name = names[index or 0] if (index or 0) < len(names) else ""
        return Decision(text if index is not None else "cuda", precision("cuda", purpose, m.bf16), name)
    if kind == "mps" and not m.mps:
        raise ValueError("mps asked for, but this torch has no usable Apple MPS device (macOS on Apple silicon "
                         "with an MPS-enabled torch)")
    why = "" if text == "cpu" else why_no_gpu(m)
    return Decision(kind, precision(kind, purpose, False), why_cpu=why)


def _nvml() -> dict:
    """NVIDIA GPUs, driver version and the newest CUDA it runs, from NVML when its bindings import."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:   # no bindings or no NVIDIA driver: nothing NVML can add
        return {}
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()     # e.g. 12020 for 12.2
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {"nvml_gpus": pynvml.nvmlDeviceGetCount(), "driver_cuda": f"{cuda // 1000}.{cuda % 1000 // 10}",
                "driver": driver.decode() if isinstance(driver, bytes) else str(driver)}
    except Exception:
        return {}
    finally:
        pynvml.nvmlShutdown()


_MACHINES: dict = {}


def probe(detail: bool = True) -> Machine:
    """This machine, asked once per process through torch (and NVML). Without `detail` the GPUs are
    counted but not opened (no names, no bf16 check): a process that only plans work for others
    starts no CUDA context of its own."""
    if detail not in _MACHINES:
        import torch
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        mps = getattr(torch.backends, "mps", None)
        opened = detail and count > 0
        _MACHINES[detail] = Machine(
            cuda_devices=count, cuda_names=tuple(torch.cuda.get_device_name(i) for i in range(count)) if opened else (),
            bf16=bool(opened and torch.cuda.is_bf16_supported()), hip=bool(getattr(torch.version, "hip", None)),
            mps=bool(mps and mps.is_available()), torch_cuda=torch.version.cuda or "",
            cuda_warning=" ".join(str(said[-1].message).split())[:200] if said else "", **_nvml())
    return _MACHINES[detail]


def resolve(asked: Optional[str] = "auto", purpose: str = "train", detail: bool = True) -> Decision:
    """The decision for `--device asked` on this machine; ValueError for a device it does not have."""
    return decide(asked, probe(detail), purpose)


def announce(asked: Optional[str], purpose: str, command: str, quiet: bool = False) -> Decision:
    """Decide, and print the one line a computing command owes its user (stderr). Under --quiet only
    a CPU fallback with a GPU present is said: that one changes how long the run takes."""
    d = resolve(asked, purpose)
    if not quiet or d.why_cpu:
        print(d.line(command), file=sys.stderr, flush=True)
    return d


def resolve_device(asked: Optional[str] = "auto", purpose: str = "train"):
    """The torch.device for `--device asked` (see `resolve`)."""
    import torch
    return torch.device(resolve(asked, purpose).device)


def amp_dtype(device, purpose: str = "train"):
    """The autocast dtype for `device` and `purpose`, or None where it computes in float32."""
    import torch
    dev = torch.device(device)
    p = precision(dev.type, purpose, dev.type == "cuda" and torch.cuda.is_bf16_supported())
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(p)


def autocast(device, purpose: str = "train"):
    """A context running the enclosed forward passes in `amp_dtype(device, purpose)`, else a no-op."""
    import contextlib
    import torch
    dtype = amp_dtype(device, purpose)
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()
