"""The service install, run for real as root into a temporary root, and the unit that systemd gets.

The installer creates the real ``gridgate`` system user (as it would on a
cabinet's box) but writes every file under the temporary root; the installed
gateway then runs as that user, as the service would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "firmware_tools" / "install.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (CI runs as root)")


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALLER), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _as_service(*args: str | Path, cwd: str = "/") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "gridgate", "--", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is closed to other users, and the service user must get in.
    root = Path(tempfile.mkdtemp(prefix="gridgate-root-"))
    root.chmod(0o755)
    try:
        done = _install(root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "site.toml: ok" in done.stdout, "the installer checked the config as the service user"
        yield root
    finally:
        shutil.rmtree(root)


def _mode(path: Path) -> tuple[str, str, str]:
    info = path.stat()
    import grp
    import pwd

    return (oct(info.st_mode & 0o7777), pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name)


def test_files_land_with_owners_and_modes_that_keep_config_from_others(installed: Path) -> None:
    assert _mode(installed / "etc/gridgate") == ("0o770", "root", "gridgate")
    assert _mode(installed / "etc/gridgate/site.toml") == ("0o660", "root", "gridgate")
    assert _mode(installed / "etc/gridgate/profiles") == ("0o750", "root", "gridgate")
    assert _mode(installed / "etc/gridgate/credentials") == ("0o700", "root", "root")
    assert _mode(installed / "var/lib/gridgate") == ("0o750", "gridgate", "gridgate")
    assert _mode(installed / "var/cache/gridgate/numba") == ("0o750", "gridgate", "gridgate")
    assert any((installed / "var/cache/gridgate/numba").rglob("*.nbi")), "kernels warmed as the service user"
    assert _mode(installed / "etc/systemd/system/gridgate.service")[0] == "0o644"
    direct_url = list(
        (installed / "opt/gridgate/venv/lib").glob("python3*/site-packages/gridgate-*/direct_url.json")
    )
    assert direct_url and '"editable": true' not in direct_url[0].read_text(), "not an editable install"


def test_the_installed_gateway_finds_its_profiles_and_checks_configs_from_any_directory(
    installed: Path,
) -> None:
    gridgate = installed / "opt/gridgate/venv/bin/gridgate"
    profiles = _as_service(gridgate, "profiles")
    assert profiles.returncode == 0, profiles.stderr
    for name in ("dust-monitor", "manhole-cover", "oil-fume-monitor", "smoke-panel"):
        assert name in profiles.stdout
    site = installed / "etc/gridgate/rs485-copy.toml"
    ca = installed / "etc/gridgate/ca.pem"
    ca.write_text("a CA certificate\n")
    os.chown(ca, 0, _gid("gridgate"))
    ca.chmod(0o640)
    site.write_text((ROOT / "configs/rs485.toml").read_text().replace("/etc/gridgate/ca.pem", str(ca)))
    site.chmod(0o644)
    check = _as_service(gridgate, "check", site)
    assert check.returncode == 0, check.stderr
    assert "ok — gateway gw-gongshu-042, 5 device(s), 78 channel(s)" in check.stdout


def test_check_as_the_service_user_names_a_file_it_could_not_read_and_the_fix(installed: Path) -> None:
    gridgate = installed / "opt/gridgate/venv/bin/gridgate"
    secret = installed / "etc/gridgate/key-root-only.pem"
    secret.write_text("not for the service\n")
    secret.chmod(0o600)
    site = installed / "etc/gridgate/tls.toml"
    site.write_text(
        (installed / "etc/gridgate/site.toml").read_text()
        + f'\n[uplink.tls]\nca_file = "{installed / "etc/gridgate"}"\n'
        f'cert_file = "{secret}"\nkey_file = "{secret}"\n'
    )
    site.chmod(0o644)
    check = _as_service(gridgate, "check", site)
    assert check.returncode == 2
    problems = check.stderr.splitlines()
    assert (
        f"  uplink.tls.ca_file: {installed / 'etc/gridgate'} is a directory; name the file inside it"
        in problems
    )
    key = next(line for line in problems if line.startswith("  uplink.tls.key_file:"))
    assert "not readable by user gridgate (mode 0600" in key and "chgrp" in key


def test_a_rerun_upgrades_keeps_config_and_state_and_passes_credentials(installed: Path) -> None:
    site = installed / "etc/gridgate/site.toml"
    edited = (
        site.read_text()
        .replace('site = "not yet named"', 'site = "Gongshu 042"')
        .replace("port = 1883", 'port = 1883\nusername = "gw"\npassword_file = "credential:mqtt-password"')
    )
    site.write_text(edited)
    state = installed / "var/lib/gridgate/outbox.sqlite3"
    state.write_bytes(b"kept")
    credential = installed / "etc/gridgate/credentials/mqtt-password"
    credential.write_text("s3cret\n")
    credential.chmod(0o600)

    done = _install(installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert site.read_text() == edited and _mode(site) == ("0o660", "root", "gridgate")
    assert state.read_bytes() == b"kept"
    dropin = installed / "etc/systemd/system/gridgate.service.d/credentials.conf"
    assert "LoadCredential=mqtt-password:/etc/gridgate/credentials/mqtt-password" in dropin.read_text()
    assert "site.toml: ok" in done.stdout, "the credential reached the check as systemd would hand it over"

    credential.unlink()
    done = _install(installed)
    assert done.returncode != 0 and not dropin.exists()
    assert "uplink.password_file: credential:mqtt-password is not there" in done.stdout + done.stderr


def test_the_installed_unit_verifies_and_scores_ok_in_systemd_analyze_security(installed: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is installed by the test set-up (firmware_tools/bootstrap.sh)"
    unit = (installed / "etc/systemd/system/gridgate.service").read_text()
    # verify looks for the binaries: point the unit at the temporary root's.
    here = installed / "verify" / "gridgate.service"
    here.parent.mkdir()
    here.write_text(unit.replace("/opt/gridgate", f"{installed}/opt/gridgate"))
    verify = subprocess.run([analyze, "verify", str(here)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr
    security = subprocess.run(
        [
            analyze,
            "security",
            "--offline=yes",
            "--no-pager",
            str(installed / "etc/systemd/system/gridgate.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    score = re.search(r"Overall exposure level for gridgate.service: ([0-9.]+) (\w+)", security.stdout)
    assert score is not None, security.stdout + security.stderr
    assert float(score.group(1)) <= 2.5 and score.group(2) == "OK", score.group(0)
    for kept in ("DeviceAllow=char-ttyUSB rw", "SupplementaryGroups=dialout", "WatchdogSec="):
        assert kept in unit
    assert "MemoryDenyWriteExecute=yes" not in unit, "Numba's JIT needs writable executable memory"


def test_uninstall_keeps_config_and_state_and_purge_removes_them(installed: Path) -> None:
    copy = Path(tempfile.mkdtemp(prefix="gridgate-root-"))
    try:
        for part in ("etc/gridgate", "var/lib/gridgate", "opt/gridgate/README.md"):
            (copy / part).parent.mkdir(parents=True, exist_ok=True)
            if (installed / part).is_dir():
                shutil.copytree(installed / part, copy / part)
            else:
                shutil.copy(installed / part, copy / part)
        done = _install(copy, "--uninstall")
        assert done.returncode == 0, done.stderr
        assert not (copy / "opt/gridgate").exists()
        assert (copy / "etc/gridgate/site.toml").exists() and (copy / "var/lib/gridgate").exists()
        done = _install(copy, "--purge")
        assert done.returncode == 0, done.stderr
        assert not (copy / "etc/gridgate").exists() and not (copy / "var/lib/gridgate").exists()
    finally:
        shutil.rmtree(copy)


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid
