"""What the gates report: one item per finding, one outcome per check, one report per run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckItem:
    id: str
    found: str
    expected: str
    waiver: str | None = None

    def line(self) -> str:
        return f"{self.id}: found {self.found}, expected {self.expected}"


@dataclass
class CheckReport:
    failures: list[CheckItem] = field(default_factory=list)
    """Failed and not waived: the release must not go out."""
    warnings: list[CheckItem] = field(default_factory=list)
    skipped: list[CheckItem] = field(default_factory=list)
    """Not run; ``found`` says why."""
    waived: list[CheckItem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Outcome:
    """What one check found while it ran; it passed when it ran and failed nothing."""

    check: str
    failures: list[CheckItem] = field(default_factory=list)
    skips: list[CheckItem] = field(default_factory=list)
    ran: bool = True

    def fail(self, found: object, expected: object) -> None:
        self.failures.append(CheckItem(self.check, str(found), str(expected)))

    def skip(self, why: str, expected: str = "the files to check", *, partly: bool = False) -> None:
        """It could not run (``partly``: the part that needs what is absent could not); ``why`` is printed."""
        self.skips.append(CheckItem(self.check, why, expected))
        if not partly:
            self.ran = False

    def nothing_to_check(self) -> None:
        """Neither passed nor skipped: what it judges is absent, and another check fails for that."""
        self.ran = False
