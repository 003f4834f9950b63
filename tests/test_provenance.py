"""Provenance without machine paths: portable commands, data files with checksums, clean records and reports."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

from hpobench_stn import Budget, FakeClock, RunSeeds, register_task
from hpobench_stn.datasets import resolve_data_root
from hpobench_stn.foundation import provenance as provenance_module
from hpobench_stn.foundation.provenance import (
    DataFile,
    data_file,
    file_sha256,
    portable_command,
    portable_path,
    portable_text,
)
from hpobench_stn.harness import registry as registry_module
from hpobench_stn.harness.records import FINAL_NAME, LOG_NAME, load_final, load_log
from hpobench_stn.harness.runner import RunSpec, execute
from hpobench_stn.tasks.digits_mlp import DigitsTask

ROOTS = {
    "$HPOBENCH_STN_DATA": "/srv/data",
    "$HPOBENCH_STN_CACHE": "/home/ada/proj/.cache",
    ".": "/home/ada/proj",
    "~": "/home/ada",
}


# --------------------------------------------------------------------------------------------------
# Paths and commands
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["/home/ada/proj/.venv/bin/hpobench", "suite", "cpu", "--out", "/home/ada/proj/results/cpu"],
            ["hpobench", "suite", "cpu", "--out", "results/cpu"],
            id="program-by-name-and-cwd-relative",
        ),
        pytest.param(
            ["/home/ada/proj/hpobench_stn/__main__.py", "run", "--data-dir", "/srv/data"],
            ["python -m hpobench_stn", "run", "--data-dir", "$HPOBENCH_STN_DATA"],
            id="python-m-and-the-data-root",
        ),
        pytest.param(
            ["hpobench", "--data-dir=/srv/data/ptb", "--option", "path=/home/ada/proj/.cache/x.npy"],
            ["hpobench", "--data-dir=$HPOBENCH_STN_DATA/ptb", "--option", "path=$HPOBENCH_STN_CACHE/x.npy"],
            id="paths-inside-options-and-the-longest-root-wins",
        ),
        pytest.param(
            ["hpobench", "--plugin", "/home/ada/plugins/t.py", "--out", "/tmp/pytest-of-ada/pytest-3/out"],
            ["hpobench", "--plugin", "~/plugins/t.py", "--out", "<abs>/out"],
            id="home-and-an-uncovered-absolute-path",
        ),
        pytest.param(
            ["hpobench", "--out", "/home/ada/project2/r", "--out", "/home/ada/proj"],
            ["hpobench", "--out", "~/project2/r", "--out", "."],
            id="a-root-is-a-folder-not-a-prefix-of-a-name",
        ),
        pytest.param(
            ["hpobench", "--out", "results/cpu", "--data-dir", "../data", "--url", "https://x.org/a/b", "w=1/2"],
            ["hpobench", "--out", "results/cpu", "--data-dir", "../data", "--url", "https://x.org/a/b", "w=1/2"],
            id="relative-paths-urls-and-fractions-stay",
        ),
    ],
)
def test_portable_command_names_no_folder_of_the_machine(argv: list[str], expected: list[str]) -> None:
    assert portable_command(argv, ROOTS) == expected
    assert portable_command(expected, ROOTS) == expected  # idempotent: a report may apply it again


def test_portable_command_of_an_empty_argv_is_empty() -> None:
    assert portable_command([], ROOTS) == []


def test_portable_path_follows_symlinked_roots_and_ignores_the_filesystem_root(tmp_path: Path) -> None:
    """A root given through a symlink still covers the real path (the PTB loader resolves its folder)."""
    (tmp_path / "real" / "ptb").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert portable_path(tmp_path / "real" / "ptb", {"$D": tmp_path / "link"}) == "$D/ptb"
    assert portable_path("/etc/hosts", {"~": "/"}) == "<abs>/hosts"  # a home of "/" would cover everything
    assert portable_path("ptb/ptb.train.txt", ROOTS) == "ptb/ptb.train.txt"


def test_portable_text_rewrites_the_paths_in_a_description() -> None:
    old = "CIFAR-10 /srv/data/c/q.npz (JPEG q75, cache /home/ada/proj/.cache/c.npy); train/val/test 1/2/3"
    new = "CIFAR-10 $HPOBENCH_STN_DATA/c/q.npz (JPEG q75, cache $HPOBENCH_STN_CACHE/c.npy); train/val/test 1/2/3"
    assert portable_text(old, ROOTS) == new


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(provenance_module).failed == 0


# --------------------------------------------------------------------------------------------------
# Data files
def test_data_file_is_relative_to_the_data_root_with_the_files_checksum(tmp_path: Path) -> None:
    root, payload = tmp_path / "data", b"the cat sat\n"
    (root / "ptb").mkdir(parents=True)
    (root / "ptb" / "ptb.train.txt").write_bytes(payload)
    record = data_file(root / "ptb" / "ptb.train.txt", root, {"$HPOBENCH_STN_DATA": root})
    assert record == DataFile("ptb/ptb.train.txt", hashlib.sha256(payload).hexdigest(), len(payload))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "c.npy").write_bytes(payload)
    outside = data_file(tmp_path / "cache" / "c.npy", root, {"$HPOBENCH_STN_CACHE": tmp_path / "cache"})
    assert outside.path == "$HPOBENCH_STN_CACHE/c.npy"


def test_file_sha256_is_recomputed_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    path.write_bytes(b"abcd")
    assert file_sha256(path) == hashlib.sha256(b"abcd").hexdigest()


def test_a_data_file_refuses_an_absolute_path_or_a_malformed_digest() -> None:
    with pytest.raises(ValueError, match=r"DataFile.path must not be absolute, got '/srv/data/x'"):
        DataFile("/srv/data/x", "0" * 64, 1)
    with pytest.raises(ValueError, match=r"DataFile.sha256 must be 64 lower-case hex digits, got 'abc'"):
        DataFile("x", "abc", 1)


# --------------------------------------------------------------------------------------------------
# A run
class FileDigits(DigitsTask):
    """digits_mlp that also reads a file under the data root, and describes it by its absolute path (as
    a careless plug-in would)."""

    def prepare(self) -> None:
        super().prepare()
        self._file = resolve_data_root(self.data_dir) / "digits" / "extra.txt"
        self._file.read_bytes()

    def data_files(self) -> tuple[Path, ...]:
        return (self._file,)

    def load(self, seeds: RunSeeds) -> str:
        super().load(seeds)
        return f"{self._file} (extra bytes)"


PAYLOAD = b"digits, extra\n"


def test_a_run_records_its_data_and_command_without_paths_host_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_registry: None
) -> None:
    """The run's log and final record name no folder of the machine, not its host: the command by
    placeholders, the data file relative to the data root with the sha256 of its bytes."""
    home = tmp_path / "home" / "ada"
    data, work, plugin = home / "data", home / "proj", home / "plugins" / "extra.py"
    (data / "digits").mkdir(parents=True)
    (data / "digits" / "extra.txt").write_bytes(PAYLOAD)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    monkeypatch.delenv("HPOBENCH_STN_DATA", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: "host-under-test-7f3a")
    # As if --plugin had loaded it, and only it: other tests of the session load plug-ins of their own.
    monkeypatch.setattr(registry_module, "_PLUGINS", {str(plugin): "f" * 64})
    register_task("digits_file_test")(FileDigits)
    out = tmp_path / "scratch" / "out"
    command = [str(work / ".venv" / "bin" / "hpobench"), "run", "--out", str(out), "--data-dir", str(data)]

    spec = RunSpec("digits_file_test", "random", "smoke", 0, Budget(1.0))
    outcome = execute(spec, out, data_dir=data, clock=FakeClock(tick=0.01), device="cpu", command=command)

    machine = {str(tmp_path), str(tmp_path.resolve()), os.path.expanduser("~"), str(Path.cwd()), "host-under-test-7f3a"}
    for name in (LOG_NAME, FINAL_NAME):
        text = (outcome.run_dir / name).read_text(encoding="utf-8")
        assert not [m for m in machine if m in text], f"{name} names the machine"
        assert '"host"' not in text
    meta = outcome.final.meta
    assert meta.command == ["hpobench", "run", "--out", "<abs>/out", "--data-dir", "$HPOBENCH_STN_DATA"]
    assert meta.data_source == "$HPOBENCH_STN_DATA/digits/extra.txt (extra bytes)"
    assert meta.data_files == (DataFile("digits/extra.txt", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD)),)
    assert meta.plugins == {"~/plugins/extra.py": "f" * 64}
    assert load_log(outcome.run_dir)[0] == meta == load_final(outcome.run_dir).meta  # typed round trip


# --------------------------------------------------------------------------------------------------
# The report
def test_a_report_from_older_records_that_hold_machine_paths_shows_none(tmp_path: Path) -> None:
    """Records written before this rule (host, absolute command, data path, plug-in path) are read as
    they are; the report's tables and its runs table show none of it."""
    from hpobench_stn.reporting.load import load_runs
    from hpobench_stn.reporting.pipeline import make_report

    results = tmp_path / "results"
    outcome = execute(RunSpec("digits_mlp", "random", "smoke", 0, Budget(1.0)), results, clock=FakeClock(tick=0.01))
    older = {
        "host": "old-host-7f3a",
        "command": ["/home/ada/proj/.venv/bin/hpobench", "suite", "cpu", "--out", "/home/ada/proj/results/cpu"],
        "data_source": "/srv/data/ptb (ptb.train/valid/test.txt, md5 verified)",
        "plugins": {"/home/ada/plugins/t.py": "0" * 64},
    }
    final_path, log_path = outcome.run_dir / FINAL_NAME, outcome.run_dir / LOG_NAME
    final = json.loads(final_path.read_text())
    final["meta"].update(older)
    del final["meta"]["data_files"]
    final_path.write_text(json.dumps(final))
    lines = log_path.read_text().splitlines()
    lines[0] = json.dumps(final["meta"])
    log_path.write_text("\n".join(lines) + "\n")

    runs = load_runs(results).runs
    assert "host" not in runs.columns
    assert runs["command"].tolist() == ["hpobench suite cpu --out <abs>/cpu"]
    report = make_report(results, tmp_path / "plots", times=("linear",))
    shown = [runs.to_csv(), report.markdown, report.provenance.sentence()]
    shown += [p.read_text(encoding="utf-8") for p in report.paths if p.suffix in {".md", ".csv", ".tex"}]
    for text in shown:
        assert not [s for s in ("/home/ada", "/srv/data", "old-host-7f3a", str(tmp_path)) if s in text]
