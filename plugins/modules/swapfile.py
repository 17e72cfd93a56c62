#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: swapfile
short_description: Create, resize, enable or remove a swap file, refusing what would hurt the host
version_added: 0.1.0
description:
  - Makes one swap file exist with the given size and be in use (O(state=present)), or be off and gone
    (O(state=absent)). A file of the right size that is already in use is left alone.
  - Resizing turns the file off, writes a new one and turns it on again.
  - Every check runs before anything is changed, and the module refuses, with the reason and what to do,
    when the file system would keep less than O(min_free) free, when turning the file off would move
    more swapped-out memory back into RAM than is available, when the kernel does not let it manage swap
    (most containers), when the file system cannot hold swap files (overlay, tmpfs, NFS, btrfs), or when
    the path holds something that is not a swap file.
  - The file is written with zeros (a swap file must have no holes) under a temporary name, owned by root
    with mode 0600 from its first byte, formatted with C(mkswap) and renamed into place.
  - It does not edit C(/etc/fstab); the C(ops.runbook.swap) role does, and sets the kernel's swappiness.
author:
  - ops.runbook maintainers (@ops-runbook)
options:
  path:
    description: The swap file.
    type: path
    default: /swapfile
  state:
    description: C(present) creates, resizes and enables the file; C(absent) turns it off and removes it.
    type: str
    default: present
    choices: [present, absent]
  size:
    description:
      - Size of the swap file with a binary unit, as for C(fallocate -l), for example C(4G) or C(512M).
      - Required with O(state=present).
    type: str
  priority:
    description:
      - Swap priority (C(swapon --priority)), from 0 to 32767; higher is used first.
      - Unset lets the kernel choose (a negative priority). A different priority on an active file turns it
        off and on again.
    type: int
  min_free:
    description: Free space that must remain on the file system after the swap file is written, with a unit.
    type: str
    default: 1G
attributes:
  check_mode:
    support: full
    description: Runs every check and reports the actions it would take in RV(actions).
  diff_mode:
    support: none
    description: A swap file has no meaningful diff.
notes:
  - Needs root (C(become)).
  - Supported file systems are ext2, ext3, ext4 and xfs.
seealso:
  - module: ansible.posix.mount
  - name: swapon(8)
    description: Manual page of swapon, about swap files and their requirements.
    link: https://man7.org/linux/man-pages/man8/swapon.8.html
"""

EXAMPLES = r"""
- name: Increase swap space (the runbook's 4G /swapfile)
  ops.runbook.swapfile:
    path: /swapfile
    size: 4G
  become: true

- name: Show what resizing would do, without doing it
  ops.runbook.swapfile:
    path: /swapfile
    size: 8G
  check_mode: true
  become: true

- name: Remove the swap file
  ops.runbook.swapfile:
    path: /swapfile
    state: absent
  become: true
"""

RETURN = r"""
actions:
  description: What was done (in check mode, what would be done), one sentence per step, in order.
  returned: always
  type: list
  elements: str
  sample: ["turn off swap on /swapfile", "replace /swapfile (1.0 GiB) with a new 4.0 GiB swap file", "turn on swap on /swapfile"]
active:
  description: The file's line of C(/proc/swaps) after the run (in check mode, before it); null when not in use.
  returned: always
  type: dict
  sample: {"path": "/swapfile", "type": "file", "size_bytes": 4294963200, "used_bytes": 0, "priority": -2}
size_bytes:
  description: Size of the swap file in bytes, null with O(state=absent).
  returned: always
  type: int
  sample: 4294967296
previous_size_bytes:
  description: Size of the file before the run, null when there was none.
  returned: always
  type: int
filesystem:
  description: Type of the file system of the file's directory.
  returned: always
  type: str
  sample: ext4
free_bytes:
  description: Free space of that file system before the run.
  returned: always
  type: int
path:
  description: The swap file.
  returned: always
  type: str
state:
  description: The wanted state.
  returned: always
  type: str
"""

from ansible_collections.ops.runbook.plugins.module_utils._module import run_module
from ansible_collections.ops.runbook.plugins.module_utils.swapfile import ensure


def argument_spec():
    return dict(
        path=dict(type="path", default="/swapfile"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        size=dict(type="str"),
        priority=dict(type="int"),
        min_free=dict(type="str", default="1G"),
    )


def run(params, check_mode, log):
    return ensure(params["path"], state=params["state"], size=params["size"], priority=params["priority"],
                  min_free=params["min_free"], check_mode=check_mode)


def main():
    run_module(argument_spec(), run, supports_check_mode=True, required_if=[("state", "present", ["size"])])


if __name__ == "__main__":
    main()
