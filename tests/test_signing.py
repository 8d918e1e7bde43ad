"""Signed releases (hub.sign) and pubctl verify, offline: keys generated here, pushes to the local test Hub.

A key signature is made by OpenSSF model-signing over the files push publishes; pubctl verify checks a
release (NAME), a folder laid out like its repository (DIR) or the repository itself (REPO_ID) against
results.json, and the signature with model-signing. Keyless (sigstore) signing needs an OIDC token and
Sigstore's servers, so only its refusal without a token is tested here.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_fixtures import build_demo_project
from hub_server import HubServer
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.layout import Layout

pytest.importorskip("model_signing", reason="the sign extra: pip install 'pubctl[sign]'")

REPO = "pubctl-demo/tiny-qwen3-enhanced-kto"  # configs/demo.yaml's hub.repo_id
runner = CliRunner()


def pubctl(*args: str):  # -> click.testing.Result
    return runner.invoke(app, list(args), catch_exceptions=False)


def key_pair(folder: Path, name: str = "signer") -> tuple[Path, Path]:
    """An EC P-256 key pair as PEM files (private, public), outside the project."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """One demo-like release per module (the card render is the slow part), copied into each test."""
    return build_demo_project(tmp_path_factory, tiny_model_path)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path / "keys")


@pytest.fixture
def signed(
    project: Path, built_demo: Path, make_config: Callable[..., str], keys: tuple[Path, Path]
) -> tuple[Path, Path]:
    """The demo release with hub.sign set to a generated key (the private key outside the project)."""
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    private, public = keys
    make_config("demo", {"hub": {"sign": {"method": "key", "private_key": str(private), "public_key": str(public)}}})
    return private, public


def model_files(project: Path) -> int:
    return len(json.loads((project / "cards/demo/results.json").read_text())["model"]["files"])


def fingerprint(public: Path) -> str:
    return hashlib.sha256(public.read_bytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------ local release
def test_dry_run_signs_and_verify_name_checks_files_and_signature(signed: tuple[Path, Path], project: Path) -> None:
    private, public = signed
    result = pubctl("push", "demo", "--dry-run")
    assert result.exit_code == 0, result.output
    plan = json.loads((project / "runs/demo/push-plan.json").read_text())
    published = [f["path"] for f in plan["files"] if f["action"] != "delete"]
    assert "model.sig" in published
    count = len(published) - 1  # every file of the commit but the signature itself
    assert f"model.sig: signed {count} files as key sha256:{fingerprint(public)}" in result.output
    assert str(private.parent) not in result.output  # a key's folder is never printed

    verified = pubctl("verify", "demo")
    assert verified.exit_code == 0, verified.output
    valid = f"signature valid (key sha256:{fingerprint(public)} from configs/demo.yaml hub.sign; {count} files signed)"
    assert f"verified demo: {model_files(project)} files match results.json; {valid}" in verified.output

    again = pubctl("push", "demo", "--dry-run")  # same files, same key: the same signature, so nothing to re-send
    assert f"reused the signature of {count} files" in again.output


def test_verify_name_fails_on_a_changed_file_naming_it(signed: tuple[Path, Path], project: Path) -> None:
    assert pubctl("push", "demo", "--dry-run").exit_code == 0
    card = project / "cards/demo/README.md"
    card.write_text(card.read_text() + "\nAn edit after signing.\n")
    result = pubctl("verify", "demo")
    assert result.exit_code == 1
    assert "signature invalid for key sha256:" in result.output and "changed since signing: README.md" in result.output

    config = project / "runs/demo/merge/model/config.json"
    config.write_bytes(config.read_bytes().replace(b"{", b"[", 1))  # same size, other bytes
    result = pubctl("verify", "demo")
    assert result.exit_code == 1
    assert "config.json differs from results.json" in result.output


def test_a_damaged_signature_record_is_refused(signed: tuple[Path, Path], project: Path) -> None:
    assert pubctl("push", "demo", "--dry-run").exit_code == 0
    record = project / "runs/demo/signature/signed.json"
    record.write_text('{"files": [{"path": "../../outside", "source": "cards/demo/README.md"}]}')
    result = pubctl("verify", "demo")
    assert result.exit_code == 2 and "signed.json: missing or damaged" in result.output
    record.unlink()
    os.mkfifo(record)  # never opened: a FIFO would block the read
    result = pubctl("verify", "demo")
    assert result.exit_code == 2 and "signed.json" in result.output
    assert "reused" not in pubctl("push", "demo", "--dry-run").output  # a damaged record is never trusted


def test_verify_imports_no_heavy_library(signed: tuple[Path, Path], project: Path) -> None:
    """pubctl verify runs with the light install and the sign extra: no torch, transformers or lm-eval."""
    assert pubctl("push", "demo", "--dry-run").exit_code == 0
    probe = (
        "import sys\nfrom pipeline.cli import app\ntry:\n    app(['verify', 'demo'], standalone_mode=False)\n"
        "finally:\n    print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'trl', 'lm_eval') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, timeout=120)
    assert "signature valid" in done.stdout and "HEAVY=\n" in done.stdout, done.stdout + done.stderr


def test_verify_with_another_key_fails(signed: tuple[Path, Path], tmp_path: Path) -> None:
    assert pubctl("push", "demo", "--dry-run").exit_code == 0
    _, other = key_pair(tmp_path / "other", "other")
    result = pubctl("verify", "demo", "--key", str(other))
    assert result.exit_code == 1
    assert "signature invalid for key sha256:" in result.output and "Key mismatch" in result.output


def test_public_key_defaults_to_the_private_keys_half(
    signed: tuple[Path, Path], make_config: Callable[..., str]
) -> None:
    private, public = signed
    make_config("demo", {"hub": {"sign": {"method": "key", "private_key": str(private)}}})
    assert pubctl("push", "demo", "--dry-run").exit_code == 0
    result = pubctl("verify", "demo")
    assert result.exit_code == 0, result.output
    assert f"key sha256:{fingerprint(public)}" in result.output


def test_unsigned_release_is_checked_against_results_json(project: Path, built_demo: Path) -> None:
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    result = pubctl("verify", "demo")
    assert result.exit_code == 0, result.output
    assert f"{model_files(project)} files match results.json; unsigned (hub.sign is not set)" in result.output


def test_a_private_key_the_push_could_publish_is_refused(
    project: Path, built_demo: Path, make_config: Callable[..., str], keys: tuple[Path, Path]
) -> None:
    inside = project / "cards" / "demo" / "secret.pem"
    inside.parent.mkdir(parents=True)
    shutil.copy(keys[0], inside)
    make_config("demo", {"hub": {"sign": {"method": "key", "private_key": str(inside)}}})
    result = pubctl("push", "demo", "--dry-run")
    assert result.exit_code == 2
    assert "'secret.pem' lies inside the project's cards/ folder" in result.output
    assert str(inside.parent) not in result.output


def test_certificate_signature(
    project: Path, built_demo: Path, make_config: Callable[..., str], tmp_path: Path
) -> None:
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    root, leaf, leaf_key = certificate_chain(tmp_path / "pki")
    sign = {"method": "certificate", "private_key": str(leaf_key), "signing_certificate": str(leaf)}
    make_config("demo", {"hub": {"sign": {**sign, "certificate_chain": [str(root)]}}})
    pushed = pubctl("push", "demo", "--dry-run")
    assert pushed.exit_code == 0, pushed.output
    assert "as certificate CN=pubctl test signer" in pushed.output
    result = pubctl("verify", "demo")
    assert result.exit_code == 0, result.output
    assert "signature valid (certificate chain root.pem" in result.output


# ------------------------------------------------------------------------------------ the Hub
def test_signed_push_commits_the_signature_and_verify_repo_id(
    signed: tuple[Path, Path], hub: HubServer, tmp_path: Path
) -> None:
    from huggingface_hub import HfApi

    from pipeline.stages import push

    _, public = signed
    result = push.run(load_config("demo"), Layout.for_release("demo"))
    on_hub = hub.files(REPO)
    assert "model.sig" in on_hub and "README.md" in on_hub and "model.safetensors" in on_hub
    assert len(hub.history(REPO)) == 2  # the repository's first commit, then the release with its signature
    assert result.details is not None
    assert result.details["signature"]["sha256"] == hashlib.sha256(on_hub["model.sig"]).hexdigest()

    verified = pubctl("verify", REPO)
    assert verified.exit_code == 0, verified.output
    assert f"signature valid (key sha256:{fingerprint(public)} from configs/demo.yaml hub.sign" in verified.output
    with_key = pubctl("verify", REPO, "--key", str(public))
    assert with_key.exit_code == 0 and "from --key" in with_key.output

    push.run(load_config("demo"), Layout.for_release("demo"))  # unchanged: the kept signature is reused
    assert len(hub.history(REPO)) == 2

    folder = tmp_path / "copy"
    HfApi().snapshot_download(REPO, local_dir=folder)
    (folder / "README.md").write_text("# another card\n")
    result = pubctl("verify", str(folder))
    assert result.exit_code == 1 and "README.md" in result.output
    shutil.rmtree(folder)
    HfApi().snapshot_download(REPO, local_dir=folder)
    (folder / "NOTES.md").write_text("added after signing\n")
    result = pubctl("verify", str(folder))
    assert result.exit_code == 1 and "not signed: NOTES.md" in result.output
    (folder / "NOTES.md").unlink()
    (folder / "extra.safetensors").write_bytes(b"unlisted weights")
    result = pubctl("verify", str(folder))
    assert result.exit_code == 1 and "extra.safetensors holds model weights results.json does not list" in result.output
    (folder / "extra.safetensors").unlink()
    plot = next((folder / "plots").glob("*.png"))
    plot.unlink()
    result = pubctl("verify", str(folder))
    assert result.exit_code == 1 and f"signed but missing: plots/{plot.name}" in result.output
    (folder / "linked.json").symlink_to(folder / "config.json")
    result = pubctl("verify", str(folder))
    assert result.exit_code == 2 and "is a symbolic link" in result.output


def test_card_only_push_signs_the_card_with_the_recorded_model(
    signed: tuple[Path, Path], hub: HubServer, make_config: Callable[..., str]
) -> None:
    from pipeline.stages import push
    from pipeline.stages.card import render_card

    push.publish(load_config("demo"), Layout.for_release("demo"))
    first = hub.files(REPO)["model.sig"]
    private, public = signed
    sign = {"method": "key", "private_key": str(private), "public_key": str(public)}
    make_config("demo", {"card": {"summary": "A new summary."}, "hub": {"sign": sign}})
    config, layout = load_config("demo"), Layout.for_release("demo")
    render_card(config, layout)
    shutil.rmtree(layout.merged_model_dir)  # as in CI: the card alone, the model only on the Hub
    push.publish(config, layout, card_only=True)
    assert hub.files(REPO)["model.sig"] != first
    result = pubctl("verify", REPO)
    assert result.exit_code == 0, result.output
    assert "signature valid" in result.output


def test_turning_signing_off_deletes_the_previous_signature(
    signed: tuple[Path, Path], hub: HubServer, make_config: Callable[..., str]
) -> None:
    """A model.sig left behind would sign files the new commit replaces; pubctl published it, so it goes."""
    from pipeline.stages import push

    push.publish(load_config("demo"), Layout.for_release("demo"))
    assert "model.sig" in hub.files(REPO)
    make_config("demo", {"card": {"summary": "Unsigned from now on."}, "hub": {"sign": None}})
    config, layout = load_config("demo"), Layout.for_release("demo")
    from pipeline.stages.card import render_card

    render_card(config, layout)
    push.publish(config, layout)
    assert "model.sig" not in hub.files(REPO)
    result = pubctl("verify", REPO)
    assert result.exit_code == 0, result.output
    assert "unsigned (no model.sig)" in result.output


def test_unsigned_repository_is_checked_against_results_json(project: Path, built_demo: Path, hub: HubServer) -> None:
    from pipeline.stages import push

    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    push.publish(load_config("demo"), Layout.for_release("demo"))
    result = pubctl("verify", REPO)
    assert result.exit_code == 0, result.output
    assert f"{model_files(project)} files match results.json; unsigned (no model.sig)" in result.output
    assert pubctl("verify", "nobody/nothing").exit_code == 2


def test_keyless_signing_without_an_oidc_token_is_refused(
    project: Path, built_demo: Path, hub: HubServer, make_config: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_IDENTITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for part in ("cards", "runs"):
        shutil.copytree(built_demo / part / "demo", project / part / "demo")
    make_config("demo", {"hub": {"sign": {"method": "sigstore"}}})
    planned = pubctl("push", "demo", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "the real push signs its" in planned.output and "files keyless (sigstore)" in planned.output
    result = pubctl("push", "demo")
    assert result.exit_code == 2
    assert "OIDC identity token" in result.output and "id-token: write" in result.output
    assert REPO not in hub.repos  # refused before anything was sent


# ------------------------------------------------------------------------------------ helpers
def certificate_chain(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed root and a code-signing leaf certificate with its key: (root.pem, leaf.pem, leaf-key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def build(subject: str, issuer: str, key, signer, ca: bool):  # -> x509.Certificate
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = build("pubctl test root", "pubctl test root", root_key, root_key, ca=True)
    leaf = build("pubctl test signer", "pubctl test root", leaf_key, root_key, ca=False)
    paths = folder / "root.pem", folder / "leaf.pem", folder / "leaf-key.pem"
    paths[0].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.mark.parametrize("odd", ["./config.json", ".", "", "../x", "/etc/passwd", "a//b"])
def test_verify_refuses_a_listed_path_no_repository_holds(tmp_path: Path, odd: str) -> None:
    """Such an entry would be skipped as a hidden file, or name the folder itself, and the count would hide it."""
    from pipeline.errors import CheckFailed
    from pipeline.results import FileEntry, ModelRecord
    from pipeline.verify import check_record

    (tmp_path / "config.json").write_text("{}")
    good = FileEntry(path="config.json", size=2, sha256=hashlib.sha256(b"{}").hexdigest())
    model = ModelRecord(
        base_model="b", architecture="A", parameters=1, dtype="float32",
        files=[good, FileEntry(path=odd, size=2, sha256="0" * 64)],
    )  # fmt: skip
    with pytest.raises(CheckFailed, match="not a file path inside the repository"):
        check_record(model, tmp_path, ["config.json"], where="copy")
