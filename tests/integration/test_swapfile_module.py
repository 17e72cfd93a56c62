"""The swapfile module as Ansible ships it: packed by Ansiballz with its engine, run on this machine.

Check mode only: the engine inspects the host and plans, and nothing is written. A module whose
engine imports did not travel with it fails before the engine runs, with Python's traceback in
module_stderr instead of the engine's answer.
"""
from conftest import ansible_module, module_result


def test_swapfile_runs_through_ansiballz_and_plans_in_check_mode(tmp_path):
    path = tmp_path / "swap"
    run = ansible_module("ops.runbook.swapfile", {"path": str(path), "size": "1M", "state": "present"}, "--check")
    result = module_result(run)
    assert "module_stderr" not in result and "MODULE FAILURE" not in result.get("msg", ""), result
    if result.get("failed"):
        # A host whose kernel or file system refuses swap files: the engine's own refusal, before any change.
        assert "Nothing was changed" in result["msg"], result
    else:
        assert result["msg"].startswith("Would write a 1.0 MiB swap file at " + str(path)), result
    assert not path.exists()
