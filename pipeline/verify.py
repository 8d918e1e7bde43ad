"""pubctl verify NAME|DIR|REPO_ID: a release's files, and its signature when it has one, against results.json.

- NAME: the local release: runs/NAME/merge/model against cards/NAME/results.json, and the signature push
  kept (runs/NAME/signature) against the files it signed, where they are in the release.
- DIR: a folder laid out like the Hub repository (``hf download REPO --local-dir DIR``).
- REPO_ID: the repository downloaded into a temporary folder (TMPDIR), then checked as a DIR.

Each file results.json's model.files lists must be there with its size and sha256, and no model weight
file may be there unlisted. ``model.sig`` is checked by model-signing, which hashes every file again
and fails on any file added, removed or changed since signing. Only regular files are read: a link, a
FIFO or a device is refused before anything is opened (exit 2). A file that differs is exit 1, naming it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.hashing import NotRegularFile, inside_regular_file, kind_of, sha256_file
from pipeline.layout import configs_dir, project_root, release_name_problem
from pipeline.refs import excerpt, hub_id_problem, revision_problem
from pipeline.results import read_results
from pipeline.signing import SIGNATURE_NAME, Verifier, key_file, verify_folder

if TYPE_CHECKING:
    from pipeline.config import ReleaseConfig
    from pipeline.config.signing import SignSection
    from pipeline.layout import Layout
    from pipeline.results import ModelRecord

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".npz")
"""Files a loader may take weights from: one the record does not list would be loaded unverified."""
FILES_MAX = 100_000
"""Most files a folder to verify may hold: a model repository has tens, a sharded one hundreds."""
NOT_THE_REPO = (".git", ".cache")
"""Top-level folders of a checkout or a download that are not the repository's files."""


@dataclass(frozen=True)
class VerifyOptions:
    key: Path | None = None
    certificates: tuple[Path, ...] = ()
    identity: str | None = None
    issuer: str | None = None
    revision: str | None = None


def verify(target: str, options: VerifyOptions, console: Console | None = None) -> None:
    """Check ``target`` (a release name, a folder or a Hub repo id); prints the verdict, raises on a failure."""
    console = console or Console(highlight=False, soft_wrap=True)
    if options.revision is not None and revision_problem(options.revision):
        raise UsageError(f"--revision {excerpt(options.revision)}: {revision_problem(options.revision)}.")
    path = Path(target).expanduser()
    if _is_release(target):  # before a folder of the same name: ./NAME says the folder
        from pipeline.config import load_config
        from pipeline.layout import Layout

        _refuse_revision(options, target)
        config = load_config(target)
        verdict = verify_release(config, Layout.for_release(config.name), options)
    elif path.is_dir():
        _refuse_revision(options, target)
        verdict = verify_folder_target(path, options)
    elif "/" in target and not path.exists() and hub_id_problem(target, require_namespace=True) is None:
        verdict = verify_repo(target, options)
    else:
        raise UsageError(
            f"pubctl verify {excerpt(target)}: not a release in {configs_dir()} (NAME), a folder laid out like a "
            "model repository (DIR), nor a Hub repo id (org/name)."
        )
    console.print(f"[bold green]verified[/] {escape(target)}: {escape(verdict)}")


def _is_release(target: str) -> bool:
    if target.endswith((".yaml", ".yml")):
        return Path(target).expanduser().is_file()
    return release_name_problem(target) is None and (configs_dir() / f"{target}.yaml").is_file()


def _refuse_revision(options: VerifyOptions, target: str) -> None:
    if options.revision is not None:
        raise UsageError(f"--revision names a revision of a Hub repository; {excerpt(target)} is local.")


# --------------------------------------------------------------------------------- the targets
def verify_release(config: ReleaseConfig, layout: Layout, options: VerifyOptions) -> str:
    """The local release: the merged model against results.json, the kept signature against what it signed."""
    from pipeline.stages.push.signature import kept_view

    model = _model(layout.results)
    folder = layout.merged_model_dir
    if not folder.is_dir():
        raise UsageError(f"verify {config.name}: no merged model at {folder}; run pubctl merge {config.name}.")
    matched = check_record(model, folder, _scan(folder), where=str(folder))
    with kept_view(layout) as kept:
        if kept is None:
            why = f"no {SIGNATURE_NAME} yet: pubctl push signs it" if config.hub.sign else "hub.sign is not set"
            return f"{matched} files match results.json; unsigned ({why})"
        view, signature, count = kept
        verifier = _verifier(options, config.hub.sign, layout.root, f"configs/{config.name}.yaml hub.sign")
        who = verify_folder(view, signature, verifier, allow_symlinks=True)
    return f"{matched} files match results.json; signature valid ({who} from {verifier.source}; {count} files signed)"


def verify_folder_target(folder: Path, options: VerifyOptions, label: str | None = None) -> str:
    """A folder laid out like the model repository: results.json at its root, model.sig beside it if signed."""
    label = label or str(folder)
    # Looked for before the walk: `verify /` must say what is missing, not the first link of the whole tree.
    present = _scan(folder) if (folder / "results.json").is_file() else []
    if "results.json" not in present:
        raise UsageError(
            f"verify {label}: no results.json at its root: not a pubctl release laid out like its Hub repository "
            "(hf download REPO_ID --local-dir DIR)."
        )
    results = read_results(folder / "results.json")
    matched = check_record(_model(folder / "results.json", results.model), folder, present, where=label)
    if SIGNATURE_NAME not in present:
        return f"{matched} files match results.json; unsigned (no {SIGNATURE_NAME})"
    sign, source = _config_sign(results.release)
    verifier = _verifier(options, sign, project_root(), source)
    who = verify_folder(folder, folder / SIGNATURE_NAME, verifier)
    signed = [p for p in present if p != SIGNATURE_NAME and not p.startswith(".git")]  # model-signing skips .git*
    return (
        f"{matched} files match results.json; signature valid ({who} from {verifier.source}; "
        f"{len(signed)} files signed)"
    )


def verify_repo(repo_id: str, options: VerifyOptions) -> str:
    """The repository at ``options.revision`` (default main), downloaded into a temporary folder, as a DIR."""

    from pipeline.hub_client import describe_hub_error, hub_api, is_hub_failure

    revision = options.revision or "main"
    with tempfile.TemporaryDirectory(prefix="pubctl-verify-") as scratch:
        folder = Path(scratch) / "repo"
        try:
            hub_api().snapshot_download(repo_id, revision=revision, local_dir=folder)
        except Exception as exc:
            if not is_hub_failure(exc):
                raise
            status = getattr(getattr(exc, "response", None), "status_code", None)
            error = UsageError if status in (401, 403, 404) else StageFailed
            raise error(f"verify {repo_id}@{revision}: could not download it ({describe_hub_error(exc)}).") from None
        return verify_folder_target(folder, options, f"{repo_id}@{revision}")


# ------------------------------------------------------------------------------------ the checks
def check_record(model: ModelRecord, folder: Path, present: list[str], *, where: str) -> int:
    """Each published file of ``model.files`` in ``folder`` with its size and sha256, and no unlisted weights.

    Sizes are compared first, so no file is read past the size the record gives it. Returns the files matched.
    """
    from pipeline.stages.push.signature import published_entries

    # A path the repository cannot hold as written ('../x', '/x', './x', '') would otherwise be skipped as a
    # hidden file (published_entries) or name the folder itself, and the count would hide it.
    odd = [entry.path for entry in model.files if not entry.path or {"", ".", ".."} & set(entry.path.split("/"))]
    if odd:
        raise CheckFailed(f"verify {where}: results.json lists {odd[0]!r}, not a file path inside the repository.")
    entries = published_entries(model.files)
    for entry in entries:
        try:
            found = inside_regular_file(folder / entry.path, folder)
        except NotRegularFile as exc:
            if exc.why == "does not exist":
                raise CheckFailed(f"verify {where}: {entry.path} is missing (results.json lists it).") from None
            raise
        if found.st_size != entry.size:
            raise CheckFailed(
                f"verify {where}: {entry.path} is {found.st_size:,} bytes; results.json records {entry.size:,}."
            )
    for entry in entries:
        sha = sha256_file(folder / entry.path)
        if sha != entry.sha256:
            raise CheckFailed(
                f"verify {where}: {entry.path} differs from results.json (sha256 {sha[:12]}; recorded "
                f"{entry.sha256[:12]})."
            )
    listed = {entry.path for entry in model.files}
    unlisted = [path for path in present if path.endswith(WEIGHT_SUFFIXES) and path not in listed]
    if unlisted:
        raise CheckFailed(
            f"verify {where}: {unlisted[0]} holds model weights results.json does not list"
            + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
            + ": a loader could take them, and nothing vouches for them."
        )
    return len(entries)


def _scan(folder: Path) -> list[str]:
    """Every file under ``folder`` as a relative POSIX path (.git and .cache aside), refusing links and special
    files (exit 2) before anything is read."""
    found: list[str] = []
    for parent, dirs, names in os.walk(folder):
        here = Path(parent)
        if here == folder:
            dirs[:] = [name for name in dirs if name not in NOT_THE_REPO]
        for name in sorted([*dirs, *names]):
            path = here / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise NotRegularFile(
                    path,
                    f"is {kind_of(mode)}",
                    "pubctl verify reads regular files only: verify a plain copy (hf download REPO_ID --local-dir "
                    "DIR copies the files rather than linking them).",
                )
            if stat.S_ISREG(mode):
                found.append(path.relative_to(folder).as_posix())
        if len(found) > FILES_MAX:
            raise UsageError(f"verify {folder}: more than {FILES_MAX:,} files; not a model repository.")
    return sorted(found)


def _model(path: Path, model: ModelRecord | None = None) -> ModelRecord:
    model = model or read_results(path).model
    if model is None or not model.files:
        raise UsageError(f"verify: {path} records no model files (model.files, written by pubctl merge).")
    return model


# ---------------------------------------------------------------------------------- the verifier
def _verifier(options: VerifyOptions, sign: SignSection | None, root: Path, source: str) -> Verifier:
    """What the signature must verify with: the command's options, else the release config's hub.sign."""
    given = [flag for flag, value in (("--key", options.key), ("--certificate", options.certificates),
                                      ("--identity", options.identity)) if value]  # fmt: skip
    if len(given) > 1:
        raise UsageError(f"pubctl verify: give one of {', '.join(given)}: a signature is made one way.")
    if options.key:
        return Verifier("key", public_key=key_file(options.key.expanduser().absolute(), root, "--key"), source="--key")
    if options.certificates:
        chain = tuple(key_file(p.expanduser().absolute(), root, "--certificate") for p in options.certificates)
        return Verifier("certificate", certificates=chain, source="--certificate")
    if options.identity:
        from pipeline.config.signing import GITHUB_ACTIONS_ISSUER

        issuer = options.issuer or GITHUB_ACTIONS_ISSUER
        return Verifier("sigstore", identity=options.identity, issuer=issuer, source="--identity")
    if sign is None:
        raise UsageError(
            f"pubctl verify: {SIGNATURE_NAME} is signed, and nothing says by whom: give --key PUBLIC.pem, "
            "--certificate ROOT.pem or --identity (sigstore), or set hub.sign in the release's config."
        )
    if sign.method == "sigstore":
        if not sign.identity:
            raise UsageError(f"{source}: a sigstore signature is checked against an identity: set hub.sign.identity.")
        return Verifier("sigstore", identity=sign.identity, issuer=sign.oidc_issuer, source=source)
    if sign.method == "certificate":
        chain = tuple(key_file(p, root, f"{source}.certificate_chain") for p in sign.certificate_chain)
        return Verifier("certificate", certificates=chain, source=source)
    if sign.public_key:
        return Verifier("key", public_key=key_file(sign.public_key, root, f"{source}.public_key"), source=source)
    assert sign.private_key is not None  # the config requires it for method key
    return Verifier("key", private_key=key_file(sign.private_key, root, f"{source}.private_key"), source=source)


def _config_sign(release: str) -> tuple[SignSection | None, str]:
    """hub.sign of configs/RELEASE.yaml when this project has the config of the release a folder holds."""
    if release_name_problem(release) or not (configs_dir() / f"{release}.yaml").is_file():
        return None, ""
    from pipeline.config import load_config

    return load_config(release).hub.sign, f"configs/{release}.yaml hub.sign"
