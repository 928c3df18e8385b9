"""scripts/system_packages.sh: what `make demo`, `make test` and .ci/run install on a bare machine.

The fake machine is a PATH of stubs: dpkg-query answers from a list of installed packages,
apt-get records its arguments and "installs" (adds to that list, and puts node, npm or
python3.11 on the PATH), id and sudo say who we are and whether `sudo -n` works."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "system_packages.sh"
BASH = "/bin/bash"

STUBS = {
    "dpkg-query": """
        pkg="${@: -1}"
        while read -r line; do
          [ "$line" = "$pkg" ] && { printf 'install ok installed'; exit 0; }
        done < "$FAKE_INSTALLED"
        exit 1
    """,
    "id": 'echo "${FAKE_UID:-1000}"',
    # `sudo -n` (no password prompt) works only when FAKE_SUDO_N=1; plain sudo stands for a
    # user who typed the password.
    "sudo": """
        if [ "$1" = "-n" ]; then [ "${FAKE_SUDO_N:-0}" = 1 ] || exit 1; shift; fi
        exec "$@"
    """,
    "apt-get": """
        echo "$*" >> "$APT_LOG"
        packages=0
        for arg in "$@"; do
          if [ "$arg" = install ]; then packages=1
          elif [ "$packages" = 1 ] && [ "${arg#-}" = "$arg" ]; then
            echo "$arg" >> "$FAKE_INSTALLED"
            case "$arg" in
              nodejs) /bin/ln -sf "$FAKE_BIN/true" "$FAKE_BIN/node" ;;
              npm) /bin/ln -sf "$FAKE_BIN/true" "$FAKE_BIN/npm" ;;
              python3.11) /bin/ln -sf "$FAKE_BIN/fake-python" "$FAKE_BIN/python3.11" ;;
            esac
          fi
        done
    """,
    # Debian's python3.11 has no ensurepip until python3.11-venv is installed.
    "fake-python": ('while read -r line; do [ "$line" = python3.11-venv ] && exit 0; '
                    'done < "$FAKE_INSTALLED"; exit 1'),
    "true": "exit 0",
}


class FakeMachine:
    def __init__(self, tmp_path: Path, installed: list[str], *, uid: int = 1000, sudo_n: bool = False,
                 commands: tuple[str, ...] = ()):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name, body in STUBS.items():
            stub = self.bin / name
            stub.write_text(f"#!{BASH}\n{body}\n")
            stub.chmod(0o755)
        os.symlink("/usr/bin/env", self.bin / "env")
        for command in commands:  # already on the PATH; a python3.11 without venv support
            os.symlink(self.bin / ("fake-python" if command == "python3.11" else "true"), self.bin / command)
        self.installed = tmp_path / "installed"
        self.installed.write_text("".join(f"{p}\n" for p in installed))
        self.apt_log = tmp_path / "apt.log"
        self.env = {"PATH": str(self.bin), "FAKE_BIN": str(self.bin), "FAKE_INSTALLED": str(self.installed),
                    "APT_LOG": str(self.apt_log), "FAKE_UID": str(uid), "FAKE_SUDO_N": "1" if sudo_n else "0"}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([BASH, str(SCRIPT), *args], env=self.env, capture_output=True, text=True,
                              timeout=30)

    def shell(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run([BASH, "-c", command], env=self.env, capture_output=True, text=True, timeout=30)

    def apt_calls(self) -> list[list[str]]:
        if not self.apt_log.exists():
            return []
        return [line.split() for line in self.apt_log.read_text().splitlines()]


def _installed_by(call: list[str]) -> set[str]:
    return {arg for arg in call[call.index("install") + 1:] if not arg.startswith("-")}


def test_this_machine_lacks_nothing_for_the_tests():
    result = subprocess.run([BASH, str(SCRIPT), "--check", "test"],
                            env={**os.environ, "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing missing" in result.stdout


@pytest.mark.parametrize(
    ("purpose", "installed", "commands", "expected"),
    [
        ("test", ["make", "chromium"], (),
         {"pkg-config", "libmariadb-dev", "redis-tools", "nodejs", "npm", "python3.11", "python3.11-venv",
          "mariadb-server-core", "mariadb-client-core"}),
        # Node from another repository (no Debian package) counts; the demo needs no browser and no
        # MariaDB server (its database is SQLite).
        ("demo", ["make", "pkg-config", "python3.11"], ("node", "npm", "python3.11"),
         {"libmariadb-dev", "redis-tools", "python3.11-venv"}),
    ],
)
def test_without_root_it_names_the_packages_and_the_command_that_installs_them(
        tmp_path, purpose, installed, commands, expected):
    machine = FakeMachine(tmp_path, installed, commands=commands)

    check = machine.run("--check", purpose)
    assert check.returncode == 1
    assert set(check.stdout.split("missing", 1)[1].split()) == expected

    result = machine.run(purpose)
    assert result.returncode == 1
    assert machine.apt_calls() == []  # not root, and sudo -n asks for a password: nothing ran
    [command] = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("sudo ")]
    assert f"make {purpose}" in result.stderr

    # The printed command, run by a user who can type the sudo password, is all it takes.
    assert machine.shell(command).returncode == 0
    update, install = machine.apt_calls()
    assert update == ["update"] and _installed_by(install) == expected
    assert shlex.split(command)[:2] == ["sudo", "apt-get"]
    assert machine.run("--check", purpose).returncode == 0


@pytest.mark.parametrize(("uid", "sudo_n"), [(0, False), (1000, True)], ids=["root", "passwordless-sudo"])
def test_as_root_or_with_passwordless_sudo_it_installs_what_is_missing(tmp_path, uid, sudo_n):
    machine = FakeMachine(tmp_path, ["make", "pkg-config", "libmariadb-dev", "redis-tools",
                                     "mariadb-client-core"],
                          uid=uid, sudo_n=sudo_n, commands=("node", "npm", "python3.11"))

    result = machine.run("test")

    assert result.returncode == 0, result.stderr
    update, install = machine.apt_calls()
    assert update[-1] == "update"
    assert _installed_by(install) == {"chromium", "python3.11-venv", "mariadb-server-core"}
    assert machine.run("--check", "test").returncode == 0
    assert machine.run("test").returncode == 0 and len(machine.apt_calls()) == 2  # nothing to do twice


def test_nothing_missing_costs_no_apt_run(tmp_path):
    machine = FakeMachine(tmp_path, ["make", "pkg-config", "libmariadb-dev", "redis-tools", "chromium",
                                     "python3.11-venv", "mariadb-server-core", "mariadb-client-core"],
                          commands=("node", "npm", "python3.11"))
    assert machine.run("test").returncode == 0
    assert machine.apt_calls() == []
