"""The distribution: a wheel built from the repo's files installs replayd under one ``replayd``
namespace, with the browser files, and runs without the repo (no editable install, no node_modules).

The fresh venv gets the wheel and nothing else; the dependencies come from this test's own venv,
whose site-packages folder is put on the fresh venv's path by a ``.pth`` line. Python does not read
the ``.pth`` files of a folder added that way, so the editable install of this checkout (a ``.pth``
file there) stays out: what the fresh venv imports of replayd is what the wheel installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.envelopes import new_id, page_events, replay_envelope
from tests.harness import API_TOKEN, PUBLIC_KEY, REPO, base_config, free_port, wait_healthy

# The repo's folders and the packages they install as (pyproject.toml's package-dir).
INSTALLED_AS = {"server": "replayd/server", "player": "replayd/player", "scrubbing": "replayd/scrubbing",
                "static": "replayd/static"}
# static/vendor/ holds copies of the browser files of the pinned npm packages (package.json), so that
# the package needs no node_modules: each must stay the file npm installs.
VENDOR = {
    "rrweb-replay.js": "@rrweb/replay/umd/replay.min.js",
    "rrweb-replay.css": "@rrweb/replay/dist/style.css",
    "msgpack.js": "@msgpack/msgpack/dist.umd/msgpack.min.js",
}


def repo_files() -> list[str]:
    """What a clone holds: the files git tracks, and new ones it does not ignore."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return [path for path in listed if (REPO / path).is_file()]


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of a copy of the repo's files (nothing built lands in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for path in repo_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, source / path)
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir",
        "--wheel-dir", out, source, cwd=source)
    [built] = out.glob("replayd-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed, seeing this venv's packages but not its editable replayd."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=venv)
    site_packages = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=venv)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site_packages.stdout.strip()) / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv


def test_the_wheel_holds_the_packages_and_browser_files_under_replayd(wheel: Path):
    expected = {INSTALLED_AS[path.split("/")[0]] + path[path.index("/"):] for path in repo_files()
                if path.split("/")[0] in INSTALLED_AS}
    for built in ("server/_apart", "scrubbing/_domwalk"):  # the C walks, built
        expected.add(f"replayd/{built}" + sysconfig.get_config_var("EXT_SUFFIX"))
    with zipfile.ZipFile(wheel) as archive:
        installed = {name for name in archive.namelist() if ".dist-info/" not in name}
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")))
    # A folder missing from pyproject.toml's package list shows up here as files missing.
    assert installed == expected
    assert "replayd = replayd.server.cli:main" in entry_points.decode()


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_vendor_files_are_the_pinned_npm_files(name: str):
    npm_file = REPO / "node_modules" / VENDOR[name]
    assert npm_file.is_file(), "node_modules is missing: run `make test` (npm ci)"
    assert (REPO / "static" / "vendor" / name).read_bytes() == npm_file.read_bytes(), (
        f"static/vendor/{name} is not the pinned file: cp node_modules/{VENDOR[name]} static/vendor/{name}")


def test_the_installed_package_knows_no_repo_and_no_top_level_packages(venv: Path, tmp_path: Path):
    python = venv / "bin" / "python"
    for name in ("server", "player", "scrubbing"):
        result = subprocess.run([python, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)
    where = run(python, "-c", "import replayd.server, replayd.player.routes as routes, replayd.scrubbing as s;"
                "print(replayd.server.__file__, routes.__file__, routes.STATIC_DIR, s.__file__, sep='\\n')",
                cwd=tmp_path).stdout.split()
    assert all(Path(path).resolve().is_relative_to(venv.resolve()) for path in where), where


@pytest.fixture
def installed_server(venv: Path, tmp_path: Path) -> Iterator[str]:
    """``replayd serve`` of the fresh venv, in an empty data directory: its URL."""
    port = free_port()
    config = base_config(tmp_path)
    config["server"] = {**config["server"], "host": "127.0.0.1", "port": port}
    (tmp_path / "replayd.yaml").write_text(yaml.safe_dump(config))
    log_path = tmp_path / "replayd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([venv / "bin" / "replayd", "serve", "--config", "replayd.yaml"], cwd=tmp_path,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
        yield f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log_path.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def get(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_the_installed_replayd_serves_the_snippet_and_the_player(installed_server: str):
    status, snippet = get(installed_server + "/static/replayd.js")
    assert status == 200 and snippet == (REPO / "static" / "replayd.js").read_bytes()

    replay_id = new_id()
    events = page_events(time.time() * 1000, "https://shop.test/", "Checkout", ["Total: 12.00"])
    envelope = replay_envelope(replay_id, 0, events)
    status, _ = get(f"{installed_server}/api/1/envelope/?sentry_key={PUBLIC_KEY}", envelope)
    assert status == 200
    for page in ("/", f"/replays/{replay_id}"):
        status, html = get(installed_server + page)
        assert status == 200, page
    files = set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html.decode()))
    assert {"/static/vendor/rrweb-replay.js", "/static/vendor/rrweb-replay.css", "/static/vendor/msgpack.js",
            "/static/player/replay-page.js"} <= {file.split("?")[0] for file in files}
    for file in sorted(files):
        assert get(installed_server + file)[0] == 200, file
