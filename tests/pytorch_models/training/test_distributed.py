"""Data-parallel training (`training.distributed`) on real gloo process groups: the averaged
gradient is the global batch's, ranks stay identical step after step, `torchrun` gives the loss
curve and metrics of one process, and two "hosts" in network namespaces train together."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from pytorch_models.models.architectures import CONFIGS, build_model
from pytorch_models.training import distributed
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.propagation import FullPropagation
from pytorch_models.training.train_model import train_model
from tests.pytorch_models.conftest import community_interactions

ROOT = Path(__file__).resolve().parents[3]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)


def _spawn(target, *args) -> None:
    """`target(rank, port, *args)` on two gloo ranks; a rank's exception fails the test."""
    mp.spawn(target, args=(free_port(), *args), nprocs=2, join=True)


class Lookup(nn.Module):
    """A table and a dense layer: a step touches only its batch's rows of the table."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(1000, 8)
        self.dense = nn.Linear(8, 1)

    def loss(self, rows: torch.Tensor) -> torch.Tensor:
        return self.dense(self.table(rows)).pow(2).mean()


def _gradient_ranks(rank: int, port: int) -> None:
    """Each rank's averaged gradient equals the gradient of the whole global batch, for a table
    whose rows travel sparsely (a few of 1,000 touched) and for one all-reduced densely (LightGCN
    over the whole graph: every row touched)."""
    _join(rank, port)
    try:
        rows = torch.tensor([3, 7, 7, 500, 3, 999, 12, 7])  # duplicates across and within ranks
        model = Lookup()
        model.loss(rows).backward()
        whole = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        model.loss(distributed.strided(rows)).backward()
        distributed.average_gradients(model)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad, whole[name], rtol=1e-6, atol=1e-7)
        assert int((model.table.weight.grad.abs().sum(1) > 0).sum()) == 5

        data = community_interactions()
        config = CONFIGS["lightgcn"](n_users=data.n_users, n_items=data.n_items, dim=8, layers=2)
        torch.manual_seed(1)
        gcn = build_model("lightgcn", asdict(config))
        propagation = FullPropagation(gcn, data, torch.Generator())
        pairs = torch.from_numpy(data.train[:32])
        batch = (pairs[:, 0], pairs[:, 1], torch.arange(32) % data.n_items)
        propagation.loss(batch).backward()
        whole = {name: p.grad.clone() for name, p in gcn.named_parameters()}
        gcn.zero_grad()
        propagation.loss(tuple(distributed.strided(t) for t in batch)).backward()
        distributed.average_gradients(gcn)
        for name, p in gcn.named_parameters():
            torch.testing.assert_close(p.grad, whole[name], rtol=1e-5, atol=1e-7)
    finally:
        distributed.stop()


def test_averaged_gradients_are_the_global_batch_gradient():
    _spawn(_gradient_ranks)


def _train_ranks(rank: int, port: int, name: str, out: str) -> None:
    _join(rank, port)
    try:
        data = community_interactions(n_users=60, n_items=40)
        overrides = {"ngcf": {"node_dropout": 0.1}}.get(name, {})
        options = TrainOptions(epochs=3, batch_size=64, dim=8, progress=False, num_workers=0, k=5,
                               propagation="sampled" if name == "ngcf" else "auto", fanout="3",
                               config_overrides=overrides)
        result = train_model(name, data, options=options)
        state = {key: value.contiguous() for key, value in result.model.state_dict().items()}
        save_file(state, f"{out}/rank{rank}.safetensors")
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(
            {"metrics": result.metrics, "losses": result.losses, "processes": result.hyper["processes"]}))
    finally:
        distributed.stop()


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_ranks_take_the_same_steps_and_rank_0_evaluates(tmp_path, name):
    """Each rank samples its own share (own negatives, NGCF's own dropout and blocks, PinSage's
    own walks), yet after 3 epochs every rank holds the same weights: every step applied the
    same averaged gradient. Only rank 0 evaluates; both report the same mean losses."""
    _spawn(_train_ranks, name, str(tmp_path))
    first, second = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-5, atol=1e-6)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["metrics"]["recall@5"] >= 0 and reports[1]["metrics"] == {}
    assert reports[0]["losses"] == pytest.approx(reports[1]["losses"]) and len(reports[0]["losses"]) == 3
    assert reports[0]["processes"] == reports[1]["processes"] == 2
    fresh = train_model(name, community_interactions(n_users=60, n_items=40),
                        options=TrainOptions(epochs=0, dim=8, progress=False, num_workers=0, k=5))
    moved = max((first[k] - fresh.model.state_dict()[k]).abs().max() for k in first)
    assert moved > 1e-3  # it trained


def write_gowalla(folder: Path, n_users=1200, n_items=600, per_user=24, seed=0) -> Path:
    """A Gowalla-format split with four communities of users and items (train.txt/test.txt)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    quarter = n_items // 4
    with open(folder / "train.txt", "w") as train, open(folder / "test.txt", "w") as test:
        for user in range(n_users):
            home = (user % 4) * quarter
            items = np.where(rng.random(per_user) < 0.85, home + rng.integers(0, quarter, per_user),
                             rng.integers(0, n_items, per_user))
            items = np.unique(items)
            held = rng.random(len(items)) < 0.2
            held[0] = False
            train.write(" ".join(map(str, [user, *items[~held]])) + "\n")
            test.write(" ".join(map(str, [user, *items[held]])) + "\n")
    return folder


def train_command(data: Path, out: Path, seed: int, *extra: str) -> list[str]:
    return ["--dataset", "gowalla", "--data-dir", str(data), "--model", "lightgcn", "--epochs", "4",
            "--dim", "32", "--batch-size", "1024", "--seed", str(seed), "--no-progress", "--out", str(out),
            *extra]


def run_training(prefix: list[str], args: list[str], **env) -> dict:
    """The command's last line as JSON. In a session of its own, so a test stopped half-way (a
    timeout) takes torchrun's ranks down with it, not only torchrun."""
    with subprocess.Popen([*prefix, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                          start_new_session=True) as child:
        try:
            out, err = child.communicate(timeout=600)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def meta(out: Path) -> dict:
    return json.loads((out / "meta.json").read_text())


def test_torchrun_two_ranks_give_one_process_loss_curve_and_metrics(tmp_path):
    """`torchrun --nproc-per-node 2 -m pytorch_models.train` against the same command as one
    process with the same global batch: two seeds of one process show the noise, and two ranks
    stay within it (losses per epoch, recall@20 and ndcg@20)."""
    data = write_gowalla(tmp_path / "data")
    single = [sys.executable, "-m", "pytorch_models.train"]
    one = [run_training(single, train_command(data, tmp_path / f"one{s}", s)) for s in (0, 1)]
    two = run_training([str(TORCHRUN), "--nproc-per-node", "2", "--master-port", str(free_port()),
                        "-m", "pytorch_models.train"], train_command(data, tmp_path / "two", 0))
    losses = [meta(tmp_path / name)["losses"] for name in ("one0", "one1", "two")]
    assert [meta(tmp_path / name)["hyper"]["processes"] for name in ("one0", "two")] == [1, 2]
    assert losses[0][-1] < 0.7 * losses[0][0]  # it learns
    for epoch in range(4):
        noise = abs(losses[1][epoch] - losses[0][epoch])
        assert abs(losses[2][epoch] - losses[0][epoch]) <= max(3 * noise, 0.02 * losses[0][epoch])
    for metric in ("recall@20", "ndcg@20"):
        noise = abs(one[1][metric] - one[0][metric])
        assert abs(two[metric] - one[0][metric]) <= max(3 * noise, 0.01), (metric, one, two)


def _netns_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"cgprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return made.returncode == 0


@pytest.mark.skipif(not _netns_available(), reason="needs root and `ip netns`")
def test_two_hosts_in_network_namespaces_rendezvous_over_tcp_and_train(tmp_path):
    """Two network namespaces joined by a veth pair, 10.77.0.1 and 10.77.0.2: a torchrun in each
    (one process per "host"), c10d rendezvous at the first host's address. Rank 0 publishes a
    version trained by both; neither host can reach the other but through the veth."""
    data = write_gowalla(tmp_path / "data", n_users=400, n_items=200)
    tag = uuid.uuid4().hex[:6]
    hosts = [f"cga{tag}", f"cgb{tag}"]
    links = [f"va{tag}", f"vb{tag}"]

    def ip(*args, ns=None):
        prefix = ["ip", "netns", "exec", ns] if ns else []
        subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)

    procs = []
    try:
        for host in hosts:
            subprocess.run(["ip", "netns", "add", host], check=True, capture_output=True)
        ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for n, (host, link) in enumerate(zip(hosts, links, strict=True)):
            ip("link", "set", link, "netns", host)
            ip("addr", "add", f"10.77.0.{n + 1}/24", "dev", link, ns=host)
            ip("link", "set", link, "up", ns=host)
            ip("link", "set", "lo", "up", ns=host)
        endpoint = "10.77.0.1:29517"
        for n, (host, link) in enumerate(zip(hosts, links, strict=True)):
            command = ["ip", "netns", "exec", host, str(TORCHRUN), "--nnodes", "2", "--nproc-per-node", "1",
                       "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", tag,
                       # which agent serves the rendezvous store (torchrun cannot tell from the
                       # address: both namespaces share the machine's hostname)
                       "--rdzv-conf", f"is_host={int(n == 0)}", "--local-addr", f"10.77.0.{n + 1}",
                       "-m", "pytorch_models.train",
                       *train_command(data, tmp_path / f"host{n}", 0)]
            command[command.index("--epochs") + 1] = "2"
            # output to files, not pipes: a host blocked on a full pipe that no one reads while the
            # test waits on the other host would stall both in their next collective
            with open(tmp_path / f"host{n}.out", "w") as out, open(tmp_path / f"host{n}.err", "w") as err:
                procs.append(subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, text=True,
                                              start_new_session=True,
                                              env={**os.environ, "OMP_NUM_THREADS": "1",
                                                   "GLOO_SOCKET_IFNAME": link}))
        for proc in procs:
            proc.wait(timeout=240)
        outputs = [((tmp_path / f"host{n}.out").read_text(), (tmp_path / f"host{n}.err").read_text())
                   for n in range(2)]
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err[-3000:]
        published = [(tmp_path / f"host{n}" / "meta.json").exists() for n in range(2)]
        assert published.count(True) == 1  # rank 0, on whichever host it landed
        folder = tmp_path / f"host{published.index(True)}"
        assert meta(folder)["hyper"]["processes"] == 2 and len(meta(folder)["losses"]) == 2
        assert sum(bool(out.strip()) for out, _ in outputs) == 1  # one JSON line, from rank 0
    except subprocess.TimeoutExpired:
        pytest.fail("the two hosts did not finish in 240 s:\n" + "\n".join(
            (tmp_path / f"host{n}.err").read_text()[-2000:] for n in range(len(procs))))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for host in hosts:
            subprocess.run(["ip", "netns", "delete", host], capture_output=True)
