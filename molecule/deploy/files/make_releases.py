"""Writes the scenario's release archives shop-A.tar.gz ... shop-E.tar.gz into the directory given.

Each holds app.py, VERSION, HEALTH and an nginx snippet that adds an X-Release header, so nginx says which
snippet it serves. C's HEALTH makes its health URL answer 503; D's snippet lacks a semicolon (nginx -t fails).
"""
import io
import os
import sys
import tarfile

RELEASES = {"A": ("healthy", ";"), "B": ("healthy", ";"), "C": ("unhealthy", ";"), "D": ("healthy", ""),
            "E": ("healthy", ";")}
SNIPPET = """server {{
    listen 8080;
    add_header X-Release {name} always;
    location / {{
        proxy_pass http://127.0.0.1:3100{semicolon}
    }}
}}
"""


def main(directory):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")) as handle:
        app = handle.read()
    os.makedirs(directory, exist_ok=True)
    for name, (health, semicolon) in RELEASES.items():
        files = {"app.py": app, "VERSION": name + "\n", "HEALTH": health + "\n",
                 "nginx.conf": SNIPPET.format(name=name, semicolon=semicolon)}
        with tarfile.open(os.path.join(directory, "shop-{0}.tar.gz".format(name)), "w:gz") as archive:
            for file_name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(file_name)
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main(sys.argv[1])
