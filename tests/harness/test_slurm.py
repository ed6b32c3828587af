"""A real Slurm runs scripts/slurm/seed_imagenet.sbatch: 2 CPU tasks (gloo) on a one-node cluster.

munged, slurmctld and slurmd start from a slurm.conf generated in a temporary folder (their own
ports, key, socket and state; no systemd) and stop afterwards, leaving no process behind. The
job goes through ``sbatch --wait``: it fetches its zoo teacher once (from a loopback server),
trains, is sent the script's time-limit signal (``scancel --batch --signal=USR1``) after its first
checkpoint, requeues itself, resumes from that checkpoint and ends with exit code 0. With the
augmentations off, the queue must hold, step after step, the teacher embeddings of the batch
rank 0 saw, then those of rank 1's, recomputed here from the images.

Skips only where Slurm cannot be installed and run as here: without root or without apt-get
(scripts/setup.sh installs Debian's slurm-wlm and munge where both are there).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.support import teacher_files as layouts
from tests.support.commands import CPU, REPO
from tests.support.solo import needs_solo
from tests.support.teacher_files import write_zoo

CAN_INSTALL = os.geteuid() == 0 and shutil.which("apt-get") is not None
needs_slurm = pytest.mark.skipif(
    not CAN_INSTALL, reason="a real Slurm needs root and apt (to install slurm-wlm and munge, and "
    "to run their daemons); this machine lacks " + ("root" if os.geteuid() != 0 else "apt-get"))
SBATCH = REPO / "scripts/slurm/seed_imagenet.sbatch"
DAEMONS = ("munged", "slurmctld", "slurmd")
TOOLS = ("sbatch", "scontrol", "scancel", "sinfo", "squeue")
WORLD, BATCH, STEPS, EPOCHS = 2, 4, 5, 2  # 40 images: 20 a rank, 5 steps of 4 an epoch
# srun starts the processes: the config's devices and strategy are the launcher's to set
OVERRIDES = [o for o in CPU if not o.startswith(("devices=", "strategy="))] + [
    "optimizer.batch_size=4", "augmentations.0.crop_size=32", "method_kwargs.queue_size=200",
    f"max_epochs={EPOCHS}", "augmentations.0.rrc.enabled=False",
    *(f"augmentations.0.{aug}.prob=0" for aug in
      ("color_jitter", "grayscale", "gaussian_blur", "horizontal_flip")),
]
SOLO_SEED = 5  # solo-learn's default seed: Lightning's DistributedSampler shuffles with it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A one-node Slurm cluster on 127.0.0.1, its files in ``root``."""

    def __init__(self, root: Path):
        self.root, self.procs = root, {}
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        r = self.root
        for sub in ("ctld", "spool"):
            (r / sub).mkdir()
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        cpus = int(re.search(r"CPUs=(\d+)", subprocess.run(
            ["slurmd", "-C"], capture_output=True, text=True, timeout=30).stdout).group(1))
        self.conf.write_text("\n".join([
            "ClusterName=seedsolo", f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge", "CredType=cred/munge",
            f"AuthInfo=socket={r}/munge.socket", f"StateSaveLocation={r}/ctld",
            f"SlurmdSpoolDir={r}/spool", f"SlurmctldPidFile={r}/slurmctld.pid",
            f"SlurmdPidFile={r}/slurmd.pid", f"SlurmctldLogFile={r}/slurmctld.log",
            f"SlurmdLogFile={r}/slurmd.log", "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/builtin", "MpiDefault=none", "ReturnToService=2",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none", "MailProg=/bin/true", "KillWait=2",
            "MinJobAge=6",  # sbatch --wait polls every 2 s (not up to 32 s) below 3 x 2 s
            "SlurmdParameters=config_overrides",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={max(cpus, WORLD)} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
        self._spawn("munged", "-F", "--force", f"--socket={r}/munge.socket",
                    f"--key-file={key}", f"--pid-file={r}/munged.pid",
                    f"--log-file={r}/munged.log", f"--seed-file={r}/munged.seed")
        self._until(lambda: (r / "munge.socket").exists(), "munged made no socket")
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-N", self.host, "-f", str(self.conf))
        self._until(lambda: self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
                    == "idle", "the node did not come up idle")

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen([name, *args], env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def _until(self, ok, what: str, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while not ok():
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"{name} exited {proc.returncode}\n{self.logs()}"
            assert time.time() < deadline, f"{what} within {timeout} s\n{self.logs()}"
            time.sleep(0.2)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        assert not check or proc.returncode == 0, f"{cmd}: {proc.stderr}\n{self.logs()}"
        return proc

    def job(self, job_id: str) -> dict:
        out = self.run("scontrol", "show", "job", "-o", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.root.glob("*.log")) + sorted(self.root.glob("*.out"))
                         + sorted(self.root.glob("job/*.out")))

    def stop(self) -> list:
        """Cancels any job left (a failed test's), stops the daemons, kills what is left of
        this cluster's processes and returns their ids: none when all went well."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            jobs = self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if jobs:
                self.run("scancel", *jobs, check=False)
                deadline = time.time() + 15
                while self.run("squeue", "-h", check=False).stdout.strip() and \
                        time.time() < deadline:
                    time.sleep(0.2)
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        time.sleep(0.5)
        left = [pid for pid in _processes_naming(str(self.root)) if pid != os.getpid()]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left


def _processes_naming(text: str) -> list:
    """Processes whose command line or environment holds ``text`` (the daemons, slurmstepd,
    srun and the job's ranks all carry SLURM_CONF)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(proc.name))
    return found


@pytest.fixture
def cluster(tmp_path):
    missing = [t for t in DAEMONS + TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `bash scripts/setup.sh` (as root "
                    "with apt-get it installs Debian's slurm-wlm and munge)", pytrace=False)
    c = Cluster(tmp_path / "slurm")
    c.root.mkdir()
    try:
        c.start()
        # the leftover check below can see these daemons (and so the job's processes)
        assert {p.pid for p in c.procs.values()} <= set(_processes_naming(str(c.root)))
        yield c
    finally:
        left = c.stop()
        print(c.logs())
        assert not left, f"processes left behind: {left}"


def expected_queue(data: Path, teacher: str) -> torch.Tensor:
    """The rows a 2-rank run enqueues: per epoch and step, rank 0's batch then rank 1's."""
    from torch.utils.data.distributed import DistributedSampler
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    from seed_solo.teachers import load_teacher

    norm = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    images = ImageFolder(str(data / "train"), transforms.Compose([
        transforms.Resize(32, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(), norm]))
    with torch.no_grad():
        emb = load_teacher(teacher)(torch.stack([x for x, _ in images]))
    rows = []
    for epoch in range(EPOCHS):
        order = []
        for rank in range(WORLD):
            sampler = DistributedSampler(range(len(images)), WORLD, rank, seed=SOLO_SEED)
            sampler.set_epoch(epoch)
            order.append(list(sampler))
        for step in range(STEPS):
            for rank in range(WORLD):
                rows.append(emb[order[rank][step * BATCH:(step + 1) * BATCH]])
    return torch.cat(rows)


@pytest.mark.slow
def test_script_outside_slurm_says_to_submit_it():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert proc.stderr == ("error: this is a Slurm batch script; submit it with sbatch (see its "
                           "first lines).\n")


@needs_solo
@needs_slurm
@pytest.mark.slow
def test_sbatch_two_ranks_requeued_and_resumed(cluster, tiny_data, server, tmp_path, monkeypatch):
    torch.manual_seed(0)
    ckpt = tmp_path / "moco.pth.tar"
    torch.save(layouts.moco_checkpoint(layouts.moco_encoder()), ckpt)
    server.files["moco.pth.tar"] = ckpt.read_bytes()
    zoo = write_zoo(tmp_path / "zoo.yaml", f"{server.url}/moco.pth.tar", name="tiny-moco")
    teacher_env = {"SEED_SOLO_ZOO": str(zoo), "SEED_SOLO_DOWNLOADS": str(tmp_path / "cache")}
    for key, value in teacher_env.items():  # for the job, and for expected_queue here
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SEED_SOLO_OFFLINE", raising=False)
    out = tmp_path / "out"
    env = {**cluster.env, **teacher_env, "DATA_DIR": str(tiny_data), "TEACHER": "tiny-moco",
           "CONFIG": "seed_r18", "ACCELERATOR": "cpu", "PYTHON": sys.executable,
           "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "MASTER_PORT": str(free_port())}
    env.pop("SEED_SOLO_DEBUG", None)
    (cluster.root / "job").mkdir()
    log = cluster.root / "job" / "job.out"
    submit = subprocess.Popen(
        ["sbatch", "--wait", "--parsable", f"--ntasks-per-node={WORLD}", "--gpus-per-node=0",
         f"--output={log}", str(SBATCH), *OVERRIDES,
         f"checkpoint.dir={out}"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        job_id = submit.stdout.readline().strip()
        assert job_id.isdigit(), f"sbatch printed {job_id!r}\n{cluster.logs()}"
        # the script's time-limit path: the batch shell's USR1 trap requeues the job
        cluster._until(lambda: list(out.glob("seed/*/*ep=0.ckpt")) or submit.poll() is not None,
                       "no first checkpoint", timeout=90)
        assert submit.poll() is None, f"the job ended before its requeue\n{cluster.logs()}"
        cluster.run("scancel", "--batch", "--signal=USR1", job_id)
        # requeued: pending, its begin time ~2 min ahead (Slurm's delay); start it now
        cluster._until(lambda: [cluster.job(job_id)[k] for k in ("Restarts", "JobState")]
                       == ["1", "PENDING"], "no requeue")
        cluster.run("scontrol", "update", f"jobid={job_id}", "StartTime=now")
        cluster._until(lambda: cluster.job(job_id)["JobState"] != "PENDING", "no restart")
        status = submit.wait(timeout=120)
    finally:
        if submit.poll() is None:
            cluster.run("scancel", job_id, check=False)
            submit.kill()
    text = log.read_text()
    assert status == 0, cluster.logs()  # sbatch --wait exits with the job's exit code
    assert "requeueing it" in text and "restart 1" in text, text
    resumed = re.search(r"Resuming from (\S+ep=\d\.ckpt)", text)
    assert resumed, text

    runs = [d for d in (out / "seed").iterdir() if d.is_dir()]
    assert len(runs) == 1 and Path(resumed.group(1)).parent == runs[0]  # one run, resumed in place
    final = runs[0] / f"seed_r18-imagenet-{runs[0].name}-ep={EPOCHS - 1}.ckpt"
    assert final.is_file(), sorted(p.name for p in runs[0].iterdir())
    assert server.hits == {"moco.pth.tar": 1}  # once for the node; the ranks found it cached

    state = torch.load(final, map_location="cpu", weights_only=True)["state_dict"]
    filled = int(state["queue.num_filled"])
    assert filled == WORLD * BATCH * STEPS * EPOCHS
    want = expected_queue(tiny_data, "tiny-moco")
    got = state["queue.embeddings"][:filled]
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().amax(dim=1)
