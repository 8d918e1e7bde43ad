"""hub.sign: how a push signs the model repository's files with OpenSSF model-signing (opt-in).

Key and certificate paths are read at push and verify time, never published and never quoted in a
message beyond their file name: a key's location can say more than its owner wants printed in CI logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pipeline.config.base import LIST_MAX, Section, project_of
from pipeline.refs import REFERENCE_MAX, project_path

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
"""The OIDC issuer of GitHub Actions' identity tokens: the one keyless signing in CI uses."""

PUBLISHED_TOPS = ("cards", "runs")
"""Project folders a push publishes from (cards/NAME, runs/NAME/merge): a private key there could be sent."""


_PATH = {"min_length": 1, "max_length": REFERENCE_MAX}


class SignSection(Section):
    method: Literal["key", "certificate", "sigstore"] = Field(
        "key",
        description="key: a PEM elliptic-curve private key; certificate: that key and its X.509 certificate; "
        "sigstore: keyless, with the OIDC identity of a GitHub Actions run (recorded in Sigstore's public log).",
    )
    private_key: str | None = Field(
        None,
        **_PATH,
        description="PEM EC private key (P-256, P-384 or P-521, no password) that signs (key, certificate). "
        "Relative to the project root, ~ expands; refused inside cards/ or runs/. Never published.",
    )
    public_key: str | None = Field(
        None,
        **_PATH,
        description="PEM public key pubctl verify checks a key signature with; default: derived from private_key.",
    )
    signing_certificate: str | None = Field(
        None, **_PATH, description="certificate: PEM X.509 certificate of private_key."
    )
    certificate_chain: list[str] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        description="certificate: PEM certificates from the signing certificate's issuer up to the root. Signing "
        "puts them in the signature; pubctl verify trusts them as the root of trust.",
    )
    identity: str | None = Field(
        None,
        min_length=1,
        description="sigstore: the signer pubctl verify expects, e.g. "
        "https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/tags/NAME/v1.0.0.",
    )
    oidc_issuer: str = Field(
        GITHUB_ACTIONS_ISSUER, min_length=1, description="sigstore: the identity's issuer pubctl verify expects."
    )

    @field_validator("private_key")
    @classmethod
    def _not_published(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        root = project_of(info).resolve()
        try:
            resolved = project_path(value, root).resolve()
        except (OSError, RuntimeError, ValueError):
            raise ValueError(f"the key file {Path(value).name!r} cannot be resolved") from None
        for top in PUBLISHED_TOPS:
            if resolved.is_relative_to(root / top):
                raise ValueError(
                    f"the private key {Path(value).name!r} lies inside the project's {top}/ folder, from which "
                    "push publishes files: move it out of the project (in CI, write it from a secret to "
                    "$RUNNER_TEMP) and point private_key there"
                )
        return value

    @model_validator(mode="after")
    def _method_needs(self) -> SignSection:
        needs = {"key": ("private_key",), "certificate": ("private_key", "signing_certificate"), "sigstore": ()}
        missing = [name for name in needs[self.method] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"method {self.method} signs with {' and '.join(missing)}: set it")
        return self
