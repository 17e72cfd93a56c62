import pytest

from ansible_collections.ops.runbook.plugins.module_utils.common import RunbookError
from ansible_collections.ops.runbook.plugins.module_utils.swapfile import (
    SWAPOFF_MEMORY_RESERVE_BYTES,
    filesystem_of,
    parse_meminfo_available,
    parse_mountinfo,
    parse_proc_swaps,
    parse_size,
    plan,
)

MIB = 1024 ** 2
GIB = 1024 ** 3

PROC_SWAPS = """\
Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/vda2                               partition\t1048572\t\t0\t\t-2
/srv/swap/swap\\040file                  file\t\t65532\t\t1024\t\t5
"""

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /tmp rw,nosuid shared:5 - tmpfs tmpfs rw
31 22 0:26 / /srv/data rw shared:6 - xfs /dev/vdb rw
40 31 0:27 / /srv/data/cache rw - tmpfs tmpfs rw
41 22 0:28 / /mnt/my\\040disk rw - btrfs /dev/vdc rw
"""


def facts(**overrides):
    """A host with 20 GiB free on ext4, 4 GiB of RAM available, swap permitted, and no swap file yet."""
    base = {
        "path": "/swapfile",
        "resolved_path": "/swapfile",
        "directory": "/",
        "directory_exists": True,
        "page_size": 4096,
        "exists": False,
        "is_regular": False,
        "size_bytes": 0,
        "allocated_bytes": 0,
        "mode": None,
        "uid": None,
        "is_swap": False,
        "active": None,
        "filesystem": "ext4",
        "free_bytes": 20 * GIB,
        "mem_available_bytes": 4 * GIB,
        "swap_permitted": True,
        "swap_refusal": None,
    }
    base.update(overrides)
    return base


def swap_file(size, active=True, used=0, priority=-2, **overrides):
    """Facts of an existing, well-formed swap file of `size` bytes."""
    entry = {"path": "/swapfile", "type": "file", "size_bytes": size - 4096, "used_bytes": used, "priority": priority}
    existing = dict(exists=True, is_regular=True, is_swap=True, size_bytes=size, allocated_bytes=size,
                    mode=0o600, uid=0, active=entry if active else None)
    existing.update(overrides)
    return facts(**existing)


@pytest.mark.parametrize("text, expected", [
    ("4G", 4 * GIB), ("512M", 512 * MIB), ("1024K", MIB), ("2T", 2 * 1024 * GIB),
    ("4GiB", 4 * GIB), ("4GB", 4 * GIB), ("4 g", 4 * GIB), (" 64M ", 64 * MIB),
])
def test_sizes_read_like_fallocate(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["4", "-1G", "1.5G", "4X", "G", "", "4G4"])
def test_sizes_without_a_unit_or_a_whole_number_are_refused(text):
    with pytest.raises(RunbookError) as raised:
        parse_size(text, "swap_file_size")
    assert "swap_file_size '{0}' is not a size".format(text) in str(raised.value)
    assert "4G" in str(raised.value)


def test_proc_swaps_parsed_with_escaped_paths():
    areas = parse_proc_swaps(PROC_SWAPS)
    assert set(areas) == {"/dev/vda2", "/srv/swap/swap file"}
    assert areas["/srv/swap/swap file"] == {
        "path": "/srv/swap/swap file", "type": "file", "size_bytes": 65532 * 1024,
        "used_bytes": 1024 * 1024, "priority": 5}


def test_empty_proc_swaps_has_no_areas():
    assert parse_proc_swaps("Filename\tType\tSize\tUsed\tPriority\n") == {}


@pytest.mark.parametrize("path, expected", [
    ("/", "ext4"), ("/var/lib", "ext4"), ("/tmp", "tmpfs"), ("/tmpfoo", "ext4"),
    ("/srv/data", "xfs"), ("/srv/data/swap", "xfs"), ("/srv/data/cache/x", "tmpfs"),
    ("/mnt/my disk/swap", "btrfs"),
])
def test_file_system_is_the_deepest_mount(path, expected):
    assert filesystem_of(path, parse_mountinfo(MOUNTINFO)) == expected


def test_a_later_mount_on_the_same_point_hides_the_earlier():
    mounts = parse_mountinfo(MOUNTINFO + "50 22 0:30 / /srv/data rw - overlay overlay rw\n")
    assert filesystem_of("/srv/data/swap", mounts) == "overlay"


def test_meminfo_available():
    assert parse_meminfo_available("MemTotal: 100 kB\nMemAvailable:    2048 kB\n") == 2 * MIB
    assert parse_meminfo_available("MemTotal: 100 kB\n") is None


def test_new_swap_file_is_created_and_enabled():
    assert plan(facts(), size_bytes=4 * GIB, min_free_bytes=GIB) == ["create", "swapon"]


def test_active_swap_file_of_the_right_size_is_left_alone():
    assert plan(swap_file(4 * GIB), size_bytes=4 * GIB, min_free_bytes=GIB) == []


def test_matching_file_that_is_off_is_enabled_without_rewriting():
    assert plan(swap_file(4 * GIB, active=False), size_bytes=4 * GIB) == ["swapon"]


def test_wrong_owner_or_mode_is_fixed_in_place():
    assert plan(swap_file(GIB, mode=0o644), size_bytes=GIB) == ["fix_mode"]
    assert plan(swap_file(GIB, uid=1000), size_bytes=GIB) == ["fix_mode"]


def test_resize_turns_off_rewrites_and_turns_on():
    assert plan(swap_file(GIB), size_bytes=4 * GIB) == ["swapoff", "create", "swapon"]


def test_resize_counts_the_current_file_as_free_space():
    # 3.5 GiB free plus the 1 GiB file being replaced leaves 0.5 GiB after a 4 GiB file.
    current = swap_file(GIB, free_bytes=3 * GIB + 512 * MIB)
    assert plan(current, size_bytes=4 * GIB, min_free_bytes=512 * MIB) == ["swapoff", "create", "swapon"]
    with pytest.raises(RunbookError) as raised:
        plan(current, size_bytes=4 * GIB, min_free_bytes=513 * MIB)
    assert "plus 1.0 GiB of the current swap file" in str(raised.value)


def test_size_over_free_disk_is_refused_with_the_numbers():
    with pytest.raises(RunbookError) as raised:
        plan(facts(free_bytes=5 * GIB), size_bytes=8 * GIB, min_free_bytes=GIB)
    message = str(raised.value)
    assert "Refusing to write a 8.0 GiB swap file at /swapfile" in message
    assert "has 5.0 GiB free" in message
    assert "less than the 1.0 GiB that must stay free" in message
    assert "Nothing was changed." in message


def test_margin_is_enforced_exactly():
    assert plan(facts(free_bytes=5 * GIB), size_bytes=4 * GIB, min_free_bytes=GIB) == ["create", "swapon"]
    with pytest.raises(RunbookError):
        plan(facts(free_bytes=5 * GIB - 1), size_bytes=4 * GIB, min_free_bytes=GIB)


def test_container_without_permission_is_refused_before_anything():
    refused = facts(swap_permitted=False, swap_refusal="the kernel does not let this process manage swap")
    with pytest.raises(RunbookError) as raised:
        plan(refused, size_bytes=GIB)
    assert "Cannot enable swap on this host: the kernel does not let this process manage swap." in str(raised.value)
    assert "swap_file_state: absent" in str(raised.value)


def test_existing_swap_file_that_cannot_be_enabled_is_refused():
    with pytest.raises(RunbookError):
        plan(swap_file(GIB, active=False, swap_permitted=False, swap_refusal="no"), size_bytes=GIB)


@pytest.mark.parametrize("fstype", ["overlay", "tmpfs", "nfs4", "btrfs", None])
def test_file_systems_that_refuse_swap_files_are_refused(fstype):
    with pytest.raises(RunbookError) as raised:
        plan(facts(filesystem=fstype), size_bytes=GIB)
    assert "where the kernel refuses swap files" in str(raised.value)


def test_swapoff_that_would_exhaust_memory_is_refused():
    busy = swap_file(GIB, used=900 * MIB, mem_available_bytes=900 * MIB + SWAPOFF_MEMORY_RESERVE_BYTES - 1)
    with pytest.raises(RunbookError) as raised:
        plan(busy, size_bytes=4 * GIB)
    assert "Refusing to resize /swapfile" in str(raised.value)
    assert "create a second swap file" in str(raised.value)
    with pytest.raises(RunbookError):
        plan(busy, state="absent")
    calm = dict(busy, mem_available_bytes=900 * MIB + SWAPOFF_MEMORY_RESERVE_BYTES)
    assert plan(calm, size_bytes=4 * GIB) == ["swapoff", "create", "swapon"]


def test_a_file_that_is_not_swap_is_never_overwritten_nor_removed():
    database = facts(exists=True, is_regular=True, size_bytes=GIB, allocated_bytes=GIB, mode=0o600, uid=0)
    for state in ("present", "absent"):
        with pytest.raises(RunbookError) as raised:
            plan(database, state=state, size_bytes=GIB)
        assert "is not a swap file" in str(raised.value)


def test_a_directory_at_the_path_is_refused():
    with pytest.raises(RunbookError) as raised:
        plan(facts(exists=True, is_regular=False), size_bytes=GIB)
    assert "is not a regular file" in str(raised.value)


def test_missing_directory_is_refused():
    with pytest.raises(RunbookError) as raised:
        plan(facts(path="/srv/swap/swapfile", directory="/srv/swap", directory_exists=False, free_bytes=None),
             size_bytes=GIB)
    assert "The directory /srv/swap of the swap file does not exist." in str(raised.value)


def test_tiny_or_missing_size_and_relative_path_are_refused():
    with pytest.raises(RunbookError):
        plan(facts(), size_bytes=MIB - 1)
    with pytest.raises(RunbookError):
        plan(facts())
    with pytest.raises(RunbookError):
        plan(facts(path="swapfile"), size_bytes=GIB)


def test_priority_change_reenables_and_bad_priority_is_refused():
    assert plan(swap_file(GIB, priority=-2), size_bytes=GIB, priority=10) == ["swapoff", "swapon"]
    assert plan(swap_file(GIB, priority=10), size_bytes=GIB, priority=10) == []
    for priority in (-1, 32768):
        with pytest.raises(RunbookError):
            plan(swap_file(GIB), size_bytes=GIB, priority=priority)


def test_absent_turns_off_and_removes():
    assert plan(swap_file(GIB), state="absent") == ["swapoff", "remove"]
    assert plan(swap_file(GIB, active=False), state="absent") == ["remove"]
    assert plan(facts(), state="absent") == []


def test_absent_works_where_swap_cannot_be_enabled():
    assert plan(facts(swap_permitted=False, swap_refusal="no", filesystem="overlay"), state="absent") == []
