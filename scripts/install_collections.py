"""Install the Ansible collections doe needs from PyPI into ./.collections.

Ansible Galaxy is often unreachable (CI, air-gapped labs), but the community `ansible` wheel on PyPI
carries every collection. Downloading that one wheel and extracting only the collections doe and the
roles of doe-suite projects use (amazon.aws, ansible.posix, community.general) costs seconds and
about 15 MB instead of the full 477 MB package.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ANSIBLE_WHEEL = "ansible==12.3.0"
COLLECTIONS = ("amazon/aws", "ansible/posix", "community/general")


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".collections")
    marker = target / f".from-{ANSIBLE_WHEEL}"
    # A collection added to the list since the last install is extracted too.
    if marker.exists() and all((target / "ansible_collections" / name / "MANIFEST.json").is_file()
                               for name in COLLECTIONS):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, ANSIBLE_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        prefixes = tuple(f"ansible_collections/{name}/" for name in COLLECTIONS)
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(prefixes)]
            archive.extractall(target, members)
    marker.touch()
    print(f"installed {', '.join(c.replace('/', '.') for c in COLLECTIONS)} into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
