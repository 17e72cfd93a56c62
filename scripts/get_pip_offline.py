"""Stands in for get-pip.py, which ansible-test downloads from a host this
machine cannot reach: bootstrap pip with ensurepip, then let that pip install
what ansible-test asked for (pip itself at its pinned version) from PyPI.

ansible-test runs this with a scrubbed environment, so the CA bundle that
pip's usual settings point to is passed explicitly when the system has one.
"""
import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

ensurepip.bootstrap(upgrade=True)
arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
if os.path.exists(SYSTEM_CA_BUNDLE):
    arguments = ["--cert", SYSTEM_CA_BUNDLE] + arguments
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + arguments))
