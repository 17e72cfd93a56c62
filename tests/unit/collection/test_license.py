"""The collection states one license everywhere and ships its full text."""
import glob
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SPDX = "GPL-3.0-or-later"


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def test_license_file_is_the_gpl_version_3_text():
    with open(os.path.join(ROOT, "LICENSE")) as handle:
        head = handle.read(200).split()
    assert head[:6] == ["GNU", "GENERAL", "PUBLIC", "LICENSE", "Version", "3,"]


def test_galaxy_and_every_role_name_the_same_license():
    galaxy = load(os.path.join(ROOT, "galaxy.yml"))
    # galaxy.yml allows license or license_file; the SPDX identifier is the one Galaxy shows.
    assert galaxy["license"] == [SPDX] and "license_file" not in galaxy
    roles = {path.split(os.sep)[-3]: load(path)["galaxy_info"]["license"]
             for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "main.yml"))}
    assert roles and set(roles.values()) == {SPDX}, roles
