"""Signatures over a release's files with OpenSSF model-signing: made at push, checked by pubctl verify.

A signature (``model.sig``, model-signing's name for it) is a Sigstore bundle over an in-toto statement
listing every file of the model repository with its sha256. It is made from the digests push already
holds (:func:`sign_digests`), so a card-only push in CI, which has no model files, still signs what the
repository will hold: the card it sends and the model files results.json records. It is checked by
model-signing itself against a folder laid out like the repository (:func:`verify_folder`), which hashes
every byte again.

model_signing (and sigstore, cryptography) are imported inside the functions: they are the ``sign``
extra, and ``pubctl --help``, ``card`` and ``check`` must not need them.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import CheckFailed, StageFailed, UsageError
from pipeline.hashing import kind_of, open_regular
from pipeline.refs import excerpt, project_path

if TYPE_CHECKING:
    from pipeline.config.signing import SignSection

SIGNATURE_NAME = "model.sig"
"""The signature's path in the repository: model-signing's default, so its own CLI finds it too."""
KEY_FILE_MAX = 1 << 20
"""Largest key or certificate file read: a PEM chain is kilobytes."""
SIGNATURE_MAX = 16 << 20
"""Largest signature read: one in-toto line per file, kilobytes for a model of thousands of shards."""
OIDC_ENV = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
"""What a GitHub Actions job with ``permissions: id-token: write`` has, and keyless signing needs."""
IDENTITY_TOKEN_ENV = "SIGSTORE_IDENTITY_TOKEN"
"""An OIDC identity token given outright (another CI's), as sigstore-python's own CLI reads it."""
IGNORED_IN_FOLDER = (SIGNATURE_NAME, ".cache")
"""Never signed: the signature itself, and huggingface_hub's download metadata in a ``--local-dir``."""


def missing_extra() -> UsageError:
    return UsageError(
        "signing needs OpenSSF model-signing, which is not installed: pip install 'pubctl[sign]' "
        "(model-signing and pyopenssl)."
    )


def require_extra() -> None:
    """UsageError when the sign extra is missing, before anything reads a key."""
    try:
        import model_signing  # noqa: F401 - only whether it is there
    except ImportError:
        raise missing_extra() from None


# ------------------------------------------------------------------------------ key files
def key_file(value: str | Path, root: Path, what: str) -> Path:
    """The path of a key or certificate file: a regular file of at most KEY_FILE_MAX bytes, never opened here.

    Messages name the file, never its folder (a key's location may say more than CI logs should).
    """
    path = project_path(value, root)
    try:
        mode = path.stat()
    except OSError as exc:
        raise UsageError(f"{what}: cannot read the file {path.name!r} ({exc.strerror or exc}).") from None
    if not stat.S_ISREG(mode.st_mode):
        raise UsageError(f"{what}: {path.name!r} is {kind_of(mode.st_mode)}, not a PEM file.")
    if mode.st_size > KEY_FILE_MAX:
        raise UsageError(f"{what}: {path.name!r} is {mode.st_size:,} bytes, too large for a PEM key or certificate.")
    return path


def _pem(path: Path) -> bytes:
    with open_regular(path) as handle:
        return handle.read(KEY_FILE_MAX + 1)


def key_fingerprint(public_key: Any) -> str:
    """``sha256:`` and the first 16 hex digits of the key's PEM SubjectPublicKeyInfo: the hint model-signing
    writes into a key signature, so the fingerprint printed is the one the bundle names."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"sha256:{hashlib.sha256(pem).hexdigest()[:16]}"


def load_private_key(path: Path, what: str) -> Any:
    """The EC private key at ``path``, or a UsageError saying why model-signing could not sign with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(_pem(path), password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted
        why = excerpt(str(exc))
        raise UsageError(f"{what}: {path.name!r} is not an unencrypted PEM private key ({why}).") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise UsageError(
            f"{what}: {path.name!r} is not an elliptic-curve key on P-256, P-384 or P-521, the keys model-signing "
            "signs with (make one: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)."
        )
    return key


def load_public_key(path: Path, what: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_public_key(_pem(path))
    except ValueError as exc:
        raise UsageError(f"{what}: {path.name!r} is not a PEM public key ({excerpt(str(exc))}).") from None


# ---------------------------------------------------------------------------------- signing
def signer_name(sign: SignSection, root: Path) -> str:
    """Who :func:`sign_digests` would sign as, checked without signing (the signature cache's key)."""
    if sign.method == "sigstore":
        return "sigstore keyless"
    assert sign.private_key is not None  # the config requires it for key and certificate
    key = load_private_key(key_file(sign.private_key, root, "hub.sign.private_key"), "hub.sign.private_key")
    if sign.method == "key":
        return f"key {key_fingerprint(key.public_key())}"
    assert sign.signing_certificate is not None
    from cryptography import x509

    path = key_file(sign.signing_certificate, root, "hub.sign.signing_certificate")
    try:
        certificate = x509.load_pem_x509_certificate(_pem(path))
    except ValueError as exc:
        raise UsageError(f"hub.sign.signing_certificate: {path.name!r} is not a PEM certificate ({exc}).") from None
    if certificate.public_key() != key.public_key():
        raise UsageError(
            f"hub.sign.signing_certificate: {path.name!r} certifies another key than hub.sign.private_key."
        )
    return f"certificate {certificate.subject.rfc4514_string()} ({key_fingerprint(key.public_key())})"


def oidc_available() -> bool:
    return all(os.environ.get(name) for name in OIDC_ENV) or bool(os.environ.get(IDENTITY_TOKEN_ENV))


def sign_digests(sign: SignSection, root: Path, name: str, digests: Iterable[tuple[str, str]], work: Path) -> bytes:
    """A signature over (repository path, sha256 hex) pairs, made by model-signing with ``sign``'s method.

    ``work`` is a folder of the release's run (never published) where model-signing writes the bundle. The
    caller has checked the key files with :func:`signer_name` (the name it keeps the signature under).
    """
    try:
        from model_signing import signing
    except ImportError:
        raise missing_extra() from None
    config = signing.Config().set_hashing_config(_recorded(name, digests))
    if sign.method == "sigstore":
        if not oidc_available():
            raise UsageError(
                "hub.sign.method sigstore signs keyless with an OIDC identity token, and there is none here: "
                f"run the push in GitHub Actions with `permissions: id-token: write` ({OIDC_ENV[0]}), or set "
                f"{IDENTITY_TOKEN_ENV}; or sign with a key (hub.sign.method: key). Nothing was sent."
            )
    else:
        assert sign.private_key is not None
        private_key = project_path(sign.private_key, root)
        if sign.method == "key":
            config.use_elliptic_key_signer(private_key=private_key)
        else:
            assert sign.signing_certificate is not None
            chain = [key_file(p, root, "hub.sign.certificate_chain") for p in sign.certificate_chain]
            certificate = project_path(sign.signing_certificate, root)
            config.use_certificate_signer(
                private_key=private_key, signing_certificate=certificate, certificate_chain=chain
            )
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sign-", dir=work) as scratch:
        out = Path(scratch) / SIGNATURE_NAME
        if sign.method == "sigstore":
            _sign_keyless(config, Path(name), out)
        else:
            config.sign(Path(name), out)
        return out.read_bytes()


def _sign_keyless(config: Any, name: Path, out: Path) -> None:
    token = os.environ.get(IDENTITY_TOKEN_ENV) or None
    try:
        # Both steps reach Sigstore (its trust root, then Fulcio and Rekor), whose errors have many types.
        config.use_sigstore_signer(use_ambient_credentials=token is None, identity_token=token)
        config.sign(name, out)
    except Exception as exc:
        if isinstance(exc, OSError) and exc.filename:
            raise  # writing the bundle here failed (a full disk): the machine's error, naming the file
        why = excerpt(str(exc), 300)
        raise StageFailed(f"keyless signing failed ({type(exc).__name__}: {why}); nothing was sent.") from None


def _recorded(name: str, digests: Iterable[tuple[str, str]]) -> Any:
    """A model-signing hashing configuration whose "hash" is the manifest of digests already measured.

    model-signing's public API hashes a folder on disk; push has already read every file once (and a
    card-only push has no model files to read), so the manifest is built from those digests, with the
    serialization that model-signing's own file hashing describes (sha256 per file, the signature ignored),
    which its verifier then recomputes from the bytes.
    """
    from model_signing import hashing, manifest
    from model_signing._hashing.hashing import Digest  # the manifest's item type; no public constructor

    serialization = manifest.SerializationType.from_args(
        {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": [SIGNATURE_NAME]}
    )
    items = [serialization.new_item(path, Digest("sha256", bytes.fromhex(sha))) for path, sha in sorted(digests)]
    recorded = manifest.Manifest(name, items, serialization)

    class Recorded(hashing.Config):
        def hash(self, model_path: Any, *, files_to_hash: Any = None) -> Any:
            return recorded

    return Recorded()


# -------------------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class Verifier:
    """What a signature must verify with: a public key, a certificate root of trust, or a Sigstore identity."""

    method: str
    public_key: Path | None = None
    certificates: tuple[Path, ...] = ()
    identity: str | None = None
    issuer: str | None = None
    source: str = ""
    """Where it came from, for the verdict: '--key', 'configs/demo.yaml hub.sign'."""
    private_key: Path | None = field(default=None, repr=False)
    """key: the public key is derived from it when no public key is given."""

    def describe(self) -> str:
        if self.method == "sigstore":
            return f"sigstore identity {self.identity} from {self.issuer}"
        if self.method == "certificate":
            return f"certificate chain {', '.join(p.name for p in self.certificates)}"
        path = self.public_key or self.private_key
        assert path is not None
        load = load_public_key if self.public_key else load_private_key
        key = load(path, self.source)
        return f"key {key_fingerprint(key if self.public_key else key.public_key())}"


def verify_folder(folder: Path, signature: Path, verifier: Verifier, *, allow_symlinks: bool = False) -> str:
    """Check ``signature`` over every file of ``folder`` (the signature and git files aside) with model-signing.

    Returns who signed, as :meth:`Verifier.describe` says; CheckFailed naming what differs otherwise.
    """
    try:
        from model_signing import hashing, verifying
    except ImportError:
        raise missing_extra() from None
    size = signature.stat().st_size
    if size > SIGNATURE_MAX:
        raise CheckFailed(f"{SIGNATURE_NAME} is {size:,} bytes, more than any signature of a model (16 MiB).")
    who = verifier.describe()
    config = verifying.Config().set_hashing_config(
        hashing.Config()
        .set_ignored_paths(paths=list(IGNORED_IN_FOLDER), ignore_git_paths=True)
        .set_allow_symlinks(allow_symlinks)
    )
    with _public_key(verifier) as public_key:
        if verifier.method == "sigstore":
            assert verifier.identity and verifier.issuer
            try:  # fetches Sigstore's trust root
                config.use_sigstore_verifier(identity=verifier.identity, oidc_issuer=verifier.issuer)
            except Exception as exc:
                why = excerpt(str(exc), 300)
                raise StageFailed(
                    f"a keyless signature is checked against Sigstore's trust root, which could not be read "
                    f"({type(exc).__name__}: {why}); nothing was verified."
                ) from None
        elif verifier.method == "certificate":
            try:
                config.use_certificate_verifier(certificate_chain=list(verifier.certificates))
            except ValueError as exc:
                raise UsageError(f"{verifier.source}: not PEM certificates ({excerpt(str(exc))}).") from None
        else:
            assert public_key is not None
            config.use_elliptic_key_verifier(public_key=public_key)
        try:
            config.verify(folder, signature)
        except OSError:
            raise
        except Exception as exc:
            # A signature is untrusted input: a damaged or forged one fails in model-signing, cryptography,
            # OpenSSL or sigstore, each with its own exception type; each is the verdict "invalid", with its words.
            why = _mismatch(str(exc)) or str(exc).strip() or type(exc).__name__
            raise CheckFailed(f"signature invalid for {who}: {why[:600]}") from None
    return who


def _mismatch(text: str) -> str | None:
    """model-signing's "Signature mismatch: [...]" as the files that differ; None for another failure.

    The signature itself was valid by then: the files are not what was signed. model-signing words the
    difference as a Python list of sentences; it is read back as the literal it is, never evaluated.
    """
    prefix = "Signature mismatch: "
    if not text.startswith(prefix):
        return None
    try:
        sentences = ast.literal_eval(text[len(prefix) :])
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(sentences, list):
        return None
    changed, parts = [], []
    for sentence in (s for s in sentences if isinstance(s, str)):
        hashed = re.match(r"Hash mismatch for '(.*)': Expected ", sentence, re.DOTALL)
        listed = re.match(r"(Extra|Missing) files(?: found)? in model '.*?': (.*)", sentence, re.DOTALL)
        if hashed:
            changed.append(hashed.group(1))
        elif listed:
            parts.append(f"{'not signed' if listed.group(1) == 'Extra' else 'signed but missing'}: {listed.group(2)}")
    if changed:
        parts.insert(0, f"changed since signing: {', '.join(changed)}")
    return "; ".join(parts) or None


@contextmanager
def _public_key(verifier: Verifier) -> Iterator[Path | None]:
    """The public key file to verify with: the given one, or one written from the private key's public half."""
    if verifier.method != "key" or verifier.public_key is not None:
        yield verifier.public_key
        return
    from cryptography.hazmat.primitives import serialization

    assert verifier.private_key is not None
    key = load_private_key(verifier.private_key, verifier.source).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with tempfile.TemporaryDirectory(prefix="pubctl-key-") as scratch:
        path = Path(scratch) / "public.pem"
        path.write_bytes(pem)
        yield path
