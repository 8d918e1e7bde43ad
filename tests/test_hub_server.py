"""The test Hub (tests/hub_server.py) answers huggingface_hub's real client the way the Hub does.

The push tests rely on these behaviours; checking them here keeps a server bug from
passing for a pubctl one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_server import HubServer


@pytest.fixture
def api(hub: HubServer):  # -> HfApi
    from huggingface_hub import HfApi

    return HfApi()


def test_endpoint_is_the_local_server(hub: HubServer) -> None:
    from huggingface_hub import constants

    assert hub.url == constants.ENDPOINT and hub.url.startswith("http://127.0.0.1:")
    assert constants.HF_HUB_DISABLE_XET


def test_upload_modes_tree_pages_and_paths_info(hub: HubServer, api, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import CommitOperationAdd

    monkeypatch.setattr(hub, "tree_page_size", 2)  # the client must follow Link headers
    api.create_repo("org/modes")
    files = {
        "config.json": b'{"a": 1}\n',
        "model.safetensors": b"weights",  # .gitattributes pattern
        "plots/loss.png": b"\x89PNG\r\n\x1a\n\x00\x00",  # binary sample
        "docs/notes.md": b"# notes\n",
    }
    api.create_commit("org/modes", [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="files")
    tree = {item.path: item for item in api.list_repo_tree("org/modes", recursive=True)}
    assert set(tree) == {".gitattributes", "docs", "plots", *files}
    assert tree["model.safetensors"].lfs is not None and tree["plots/loss.png"].lfs is not None
    assert tree["config.json"].lfs is None and tree["config.json"].size == len(files["config.json"])
    top = {item.path for item in api.list_repo_tree("org/modes")}
    assert top == {".gitattributes", "config.json", "model.safetensors", "docs", "plots"}
    info = {item.path: item for item in api.get_paths_info("org/modes", ["config.json", "plots", "missing.txt"])}
    assert set(info) == {"config.json", "plots"} and info["config.json"].blob_id == tree["config.json"].blob_id
    assert hub.files("org/modes")["plots/loss.png"] == files["plots/loss.png"]


def test_a_stale_parent_commit_gets_412_and_changes_nothing(hub: HubServer, api) -> None:
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    api.create_repo("org/race")
    first = api.model_info("org/race").sha
    api.create_commit("org/race", [CommitOperationAdd("a.txt", b"a")], commit_message="a", parent_commit=first)
    head = api.model_info("org/race").sha
    with pytest.raises(HfHubHTTPError) as failure:
        api.create_commit("org/race", [CommitOperationAdd("b.txt", b"b")], commit_message="b", parent_commit=first)
    assert failure.value.response.status_code == 412
    assert api.model_info("org/race").sha == head and "b.txt" not in hub.files("org/race")


def test_stored_lfs_objects_are_not_asked_for_again(hub: HubServer, api) -> None:
    from huggingface_hub import CommitOperationAdd

    api.create_repo("org/lfs")
    payload = bytes(range(256)) * 64
    api.create_commit("org/lfs", [CommitOperationAdd("a.bin", payload)], commit_message="a")
    mark = hub.mark()
    api.create_commit("org/lfs", [CommitOperationAdd("copy/a.bin", payload)], commit_message="same bytes")
    assert "lfs_batch" in hub.kinds_since(mark) and "lfs_upload" not in hub.kinds_since(mark)
    assert hub.files("org/lfs")["copy/a.bin"] == payload


def test_private_repos_need_a_token_and_writes_always_do(
    hub: HubServer, api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    api.create_repo("org/secret", private=True)
    assert api.model_info("org/secret").private is True
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/secret", token=False)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/secret", ".gitattributes", cache_dir=tmp_path, token=False)
    with pytest.raises(HfHubHTTPError) as failure:
        api.create_repo("org/other", token=False)
    assert failure.value.response.status_code == 401


def test_branches_tags_and_pull_requests(hub: HubServer, api) -> None:
    from huggingface_hub import CommitOperationAdd

    api.create_repo("org/refs")
    base = api.model_info("org/refs").sha
    api.create_branch("org/refs", branch="dev", revision=base)
    api.create_commit("org/refs", [CommitOperationAdd("x.txt", b"x")], commit_message="x", revision="dev")
    pr = api.create_commit("org/refs", [CommitOperationAdd("y.txt", b"y")], commit_message="y", create_pr=True)
    api.create_tag("org/refs", tag="v1", revision="dev")
    refs = api.list_repo_refs("org/refs", include_pull_requests=True)
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    assert pr.pr_url and refs.pull_requests and refs.pull_requests[0].target_commit == pr.oid
    assert api.model_info("org/refs").sha == base  # the PR did not touch main
    assert set(hub.files("org/refs", "v1")) == {".gitattributes", "x.txt"}


def test_a_pull_request_needs_an_existing_branch(hub: HubServer, api) -> None:
    # huggingface_hub's create_commit docs: a create_pr revision that is not a branch is RevisionNotFound.
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import RevisionNotFoundError

    api.create_repo("org/prs")
    with pytest.raises(RevisionNotFoundError):
        api.create_commit(
            "org/prs", [CommitOperationAdd("y.txt", b"y")], commit_message="y", revision="nope", create_pr=True
        )
    assert not hub.repos["org/prs"].pull_requests
