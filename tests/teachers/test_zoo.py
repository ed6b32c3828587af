"""The zoo registry and its downloads, over real HTTP from a server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from seed_solo.core.errors import ConfigError
from seed_solo.nets.resnet import ARCHS
from seed_solo.teachers import download, load_teacher, zoo
from seed_solo.teachers.formats import FORMATS
from tests.support import teacher_files as layouts
from tests.support.teacher_files import write_zoo


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "cache"))
    monkeypatch.delenv("SEED_SOLO_OFFLINE", raising=False)
    monkeypatch.delenv("SEED_SOLO_ZOO", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def moco_bytes(tmp_path_factory):
    torch.manual_seed(0)
    enc = layouts.moco_encoder(mlp=True)
    path = tmp_path_factory.mktemp("moco") / "moco.pth.tar"
    torch.save(layouts.moco_checkpoint(enc), path)
    return enc, path.read_bytes()


def test_packaged_registry_has_the_paper_teachers():
    reg = zoo.registry()
    for name in ["mocov1-r50-200ep", "mocov2-r50-200ep", "mocov2-r50-800ep", "mocov3-r50-1000ep",
                 "swav-r50-100ep", "swav-r50-200ep", "swav-r50-400ep", "swav-r50-800ep",
                 "swav-r50w2-400ep", "swav-r50w4-400ep", "swav-r50w5-400ep", "dino-r50",
                 "barlowtwins-r50", "vicreg-r50", "seed-mocov2-r101-200ep",
                 "seed-mocov2-r152-200ep", "seed-mocov2-r152-800ep"]:
        e = reg[name]
        assert e.url.startswith("https://") and e.format in FORMATS and e.arch in ARCHS
        assert e.input_norm in ("imagenet", "none") and e.licence
    assert reg["mocov2-r50-800ep"].checksum == "md5:a04e12f8"
    assert reg["mocov1-r50-200ep"].checksum == "md5:b251726a"
    assert reg["mocov2-r50-200ep"].checksum == "md5:59fd9945"
    assert reg["swav-r50w5-400ep"].top1 == 78.5 and reg["mocov3-r50-1000ep"].embed_dim == 256
    assert reg["dino-r50"].embed_dim == 2048 and reg["dino-r50"].format == "backbone"
    assert reg["swav-r50w2-400ep"].mirrors[0].startswith("https://seed.blob.core.windows.net/")


def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError, match="Did you mean mocov2-r50-800ep"):
        zoo.registry().get_entry("mocov2-r50-80ep")
    with pytest.raises(FileNotFoundError, match="Did you mean swav-r50w2-400ep"):
        load_teacher("swav-r50w2-40ep")


def test_download_caches_and_verifies(server, env, moco_bytes):
    enc, data = moco_bytes
    server.files["moco.pth.tar"] = data
    md5 = hashlib.md5(data).hexdigest()
    zoo_file = write_zoo(env / "zoo.yaml", f"{server.url}/moco.pth.tar", f"md5:{md5[:8]}")
    x = torch.randn(2, 3, 32, 32)
    teacher = load_teacher("my-moco", zoo_file=str(zoo_file))
    with torch.no_grad():
        torch.testing.assert_close(teacher.model(x), enc(x), rtol=1e-4, atol=1e-5)
    cached = env / "cache" / "my-moco.pth.tar"
    assert cached.read_bytes() == data
    assert not list(cached.parent.glob(".*.part"))
    load_teacher("my-moco", zoo_file=str(zoo_file))  # from the cache: no second request
    assert server.hits["moco.pth.tar"] == 1


def test_checksum_mismatch_deletes_and_says_so(server, env):
    server.files["f.pth"] = b"not the right bytes"
    entry = zoo.ZooEntry("x", f"{server.url}/f.pth", "m", "resnet50", "moco", 16,
                         checksum="sha256:deadbeef")
    with pytest.raises(download.ChecksumError, match="checksum mismatch.*deleted"):
        download.fetch(entry)
    assert not (env / "cache" / "x.pth").exists()
    assert not list((env / "cache").glob(".*.part"))


def test_corrupted_cache_is_deleted_and_downloaded_again(server, env):
    server.files["f.pth"] = b"payload"
    md5 = hashlib.md5(b"payload").hexdigest()
    entry = zoo.ZooEntry("x", f"{server.url}/f.pth", "m", "resnet50", "moco", 16,
                         checksum=f"md5:{md5[:8]}")
    (env / "cache").mkdir()
    (env / "cache" / "x.pth").write_bytes(b"payloaX")
    assert download.fetch(entry).read_bytes() == b"payload"
    assert server.hits["f.pth"] == 1


def test_truncated_transfer_is_never_used(server, env):
    server.files["big.pth"] = bytes(range(256)) * 64
    server.truncate.add("big.pth")
    entry = zoo.ZooEntry("big", f"{server.url}/big.pth", "m", "resnet50", "moco", 16)
    with pytest.raises(RuntimeError, match="could not download big.pth.*(truncated|broke)"):
        download.fetch(entry)
    assert not (env / "cache" / "big.pth").exists()
    assert not list((env / "cache").glob(".*.part"))


def test_mirror_used_when_first_url_fails(server, env):
    server.files["m.pth"] = b"abc"
    entry = zoo.ZooEntry("m", f"{server.url}/gone.pth", "m", "resnet50", "moco", 16,
                         mirrors=(f"{server.url}/m.pth",))
    assert download.fetch(entry).read_bytes() == b"abc"
    assert server.hits == {"gone.pth": 1, "m.pth": 1}


def test_offline_never_touches_network(server, env, monkeypatch):
    server.files["f.pth"] = b"abc"
    monkeypatch.setenv("SEED_SOLO_OFFLINE", "1")
    entry = zoo.ZooEntry("off", f"{server.url}/f.pth", "m", "resnet50", "moco", 16)
    dest = env / "cache" / "off.pth"
    with pytest.raises(RuntimeError, match=f"fetch {server.url}/f.pth and put it at {dest}"):
        download.fetch(entry)
    assert server.hits == {}
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"abc")  # placed by hand: used as is
    assert download.fetch(entry) == dest and server.hits == {}


def test_user_registry_from_env_var_overrides_and_adds(server, env, monkeypatch):
    zoo_file = write_zoo(env / "mine.yaml", f"{server.url}/a.pth", name="mocov2-r50-800ep")
    monkeypatch.setenv("SEED_SOLO_ZOO", str(zoo_file))
    reg = zoo.registry()
    assert reg["mocov2-r50-800ep"].url == f"{server.url}/a.pth" and "dino-r50" in reg
    monkeypatch.setenv("SEED_SOLO_ZOO", str(env / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="SEED_SOLO_ZOO"):
        zoo.registry()


def test_user_registry_bad_entry_is_explained(env):
    (env / "bad.json").write_text('{"t": {"url": "http://x/y.pth", "colour": "red"}}')
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\].*lacks"):
        zoo.registry(env / "bad.json")


def test_plain_url_source(server, env, moco_bytes):
    enc, data = moco_bytes
    server.files["moco.pth.tar"] = data
    teacher = load_teacher(f"{server.url}/moco.pth.tar?sig=abc")
    assert teacher.embed_dim == 16
    assert len(list((env / "cache" / "urls").glob("*-moco.pth.tar"))) == 1


def test_vit_teachers_are_listed_with_their_facts():
    from seed_solo.teachers.meta_layouts import META_FORMATS

    reg = zoo.registry()
    dims = {"dinov2-vits14": 384, "dinov2-vitb14": 768, "dinov2-vitl14": 1024,
            "dinov2-vitg14": 1536, "dinov2-vits14-reg4": 384, "dinov2-vitg14-reg4": 1536,
            "dino-vits16": 384, "dino-vitb16": 768, "mocov3-vits-300ep": 256,
            "mocov3-vitb-300ep": 256, "dinov3-vits16": 384, "dinov3-vitb16": 768,
            "dinov3-vitl16": 1024, "dinov3-convnext-tiny": 768, "dinov3-convnext-large": 1536}
    for name, dim in dims.items():
        e = reg[name]
        assert e.format in META_FORMATS and e.embed_dim == dim and e.licence
    assert reg["dinov2-vits14"].url.endswith("/dinov2_vits14/dinov2_vits14_pretrain.pth")
    assert reg["dinov2-vitb14-reg4"].url.endswith("dinov2_vitb14_reg4_pretrain.pth")
    assert reg["dinov2-vits14"].top1 == 81.1 and reg["dinov2-vitg14"].top1 == 86.5
    assert reg["mocov3-vits-300ep"].url.endswith("vit-s-300ep.pth.tar")
    assert reg["dino-vits16"].url.endswith("dino_deitsmall16_pretrain.pth")
    assert reg["dinov3-vitl16"].gated and reg["dinov3-vitl16"].licence == "DINOv3 License"


def test_gated_entry_says_where_to_get_and_put_the_file(env, server):
    e = zoo.registry()["dinov3-vits16"]
    dest = env / "cache" / "dinov3-vits16.pth"
    with pytest.raises(FileNotFoundError) as err:
        download.fetch(e)
    msg = str(err.value)
    assert "gated download under the DINOv3 License" in msg and e.url in msg
    assert "dinov3_vits16_pretrain_lvd1689m-08c60483.pth" in msg and str(dest) in msg
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"placed by hand")
    with pytest.raises(download.ChecksumError, match="expected sha256:08c60483"):
        download.fetch(e)  # the file name's 8 hex digits are its sha256 prefix
    assert dest.exists()  # never deleted: it was placed by hand
    unchecked = dataclasses.replace(e, checksum=None)
    assert download.fetch(unchecked) == dest and server.hits == {}


def test_a_cached_file_that_changed_since_it_arrived_is_caught(server, env, monkeypatch, capsys):
    """Trust on first use: no published checksum, yet a later change is found and repaired."""
    server.files["t.pth"] = b"the real weights"
    entry = zoo.ZooEntry("tofu", f"{server.url}/t.pth", "m", "resnet50", "moco", 16)
    dest = download.fetch(entry)
    record = download.recorded(dest)
    assert record["sha256"] == hashlib.sha256(b"the real weights").hexdigest()
    assert record["size"] == 16 and record["source"] == f"{server.url}/t.pth"

    dest.write_bytes(b"something else!!")  # same size, other bytes
    assert download.fetch(entry).read_bytes() == b"the real weights"  # deleted, fetched again
    assert "hashed to sha256:" in capsys.readouterr().out and server.hits["t.pth"] == 2

    dest.write_bytes(b"tampered again")
    monkeypatch.setenv("SEED_SOLO_OFFLINE", "1")
    with pytest.raises(download.ChecksumError, match="recorded when it arrived.*put it at"):
        download.fetch(entry)
    assert not dest.exists()


def test_a_file_placed_by_hand_is_recorded_then_watched(server, env, capsys):
    entry = zoo.ZooEntry("hand", f"{server.url}/h.pth", "m", "resnet50", "moco", 16)
    dest = env / "cache" / "hand.pth"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"put here by hand")
    assert download.fetch(entry) == dest and server.hits == {}
    assert "was not downloaded by seed-solo; recorded its sha256" in capsys.readouterr().out
    assert download.recorded(dest)["source"] == "placed by hand"


def test_partial_downloads_of_dead_processes_are_removed(server, env):
    server.files["p.pth"] = b"payload"
    entry = zoo.ZooEntry("part", f"{server.url}/p.pth", "m", "resnet50", "moco", 16)
    cache = env / "cache"
    cache.mkdir()
    dead = cache / ".part.pth.999999.part"  # no process has that pid
    dead.write_bytes(b"pay")
    assert download.fetch(entry).read_bytes() == b"payload"
    assert not dead.exists() and sorted(p.name for p in cache.iterdir()) == [
        ".lock", "manifest.json", "part.pth"]  # .lock: one download per folder at a time


def test_a_zoo_file_of_another_embedding_size_is_refused_by_name(server, env, moco_bytes):
    enc, data = moco_bytes  # a MoCo checkpoint whose head gives d = 16
    server.files["m.pth"] = data
    zoo_file = write_zoo(env / "zoo.yaml", f"{server.url}/m.pth", name="claims-128")
    text = zoo_file.read_text().replace("embed_dim: 16", "embed_dim: 128")
    zoo_file.write_text(text)
    with pytest.raises(ValueError, match="claims-128.*gives d = 16.*zoo entry says 128"):
        load_teacher("claims-128", zoo_file=str(zoo_file))


def test_the_download_folder_follows_its_variable_and_its_former_name(monkeypatch, tmp_path):
    monkeypatch.delenv("SEED_SOLO_DOWNLOADS", raising=False)
    monkeypatch.setenv("SEED_SOLO_CACHE", str(tmp_path / "old"))  # its former name
    assert download.download_dir() == tmp_path / "old"
    monkeypatch.setenv("SEED_SOLO_DOWNLOADS", str(tmp_path / "new"))
    assert download.download_dir() == tmp_path / "new"
    assert download.download_dir(tmp_path / "given") == tmp_path / "given"


def test_a_zoo_name_that_would_leave_the_download_folder_is_refused(server, env, moco_bytes):
    server.files["moco.pth.tar"] = moco_bytes[1]
    zoo_file = write_zoo(env / "zoo.yaml", f"{server.url}/moco.pth.tar",
                         name="../../escaped-r18")
    with pytest.raises(ConfigError, match=rf"{env / 'zoo.yaml'}: zoo name '../../escaped-r18' "
                       r"cannot name a file in the download folder"):
        load_teacher("../../escaped-r18", zoo_file=str(zoo_file))
    assert server.hits == {} and not list(env.parent.rglob("escaped-r18*"))


def test_plain_http_without_a_checksum_is_warned_once(server, env, moco_bytes, capsys):
    _, data = moco_bytes
    server.files["moco.pth.tar"] = data
    url = f"{server.url}/moco.pth.tar"
    assert url.startswith("http://")
    download.fetch(zoo.ZooEntry("plain", url, "m", "resnet50", "moco", 16))
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [f"seed-solo: warning: {url} is plain http and has no checksum, so a file "
                      "changed on its way would go unnoticed; use its https url, or give its "
                      "checksum (a zoo entry's checksum, or the teacher option "
                      "checksum=sha256:...)."]
    md5 = hashlib.md5(data).hexdigest()
    download.fetch(zoo.ZooEntry("summed", url, "m", "resnet50", "moco", 16,
                                checksum=f"md5:{md5}"))
    assert "warning" not in capsys.readouterr().err
