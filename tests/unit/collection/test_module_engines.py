"""A stranger finds a module's engine in one step: plugins/module_utils/NAME.py for plugins/modules/NAME.py.

Host-side entry points of the scheduled jobs end in _cli; private helpers start with an underscore.
"""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules")) if name.endswith(".py"))
UTILS = os.path.join(ROOT, "plugins", "module_utils")


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_an_engine_of_its_name_and_uses_it(module):
    assert os.path.exists(os.path.join(UTILS, module + ".py")), "no plugins/module_utils/{}.py".format(module)
    with open(os.path.join(ROOT, "plugins", "modules", module + ".py")) as handle:
        source = handle.read()
    assert re.search(r"plugins\.module_utils(\.{0}\b| import .*\b{0}\b)".format(module), source), \
        "plugins/modules/{0}.py does not import its engine plugins/module_utils/{0}.py".format(module)


def test_host_entry_points_are_named_cli():
    entry_points = sorted(name for name in os.listdir(UTILS) if name.endswith(".py")
                          and re.search(r"^def main\(", open(os.path.join(UTILS, name)).read(), re.M))
    assert entry_points and all(name.endswith("_cli.py") for name in entry_points), entry_points
