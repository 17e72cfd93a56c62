"""Every process the suite starts keeps botocore away from the instance-metadata address."""
import os
import subprocess
import sys

# Importing the harness sets the environment for this process and every process it starts.
import harness  # noqa: F401  pylint: disable=unused-import


def test_processes_started_by_the_suite_never_ask_the_instance_metadata_address():
    assert os.environ.get("AWS_EC2_METADATA_DISABLED") == "true"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('AWS_EC2_METADATA_DISABLED'))"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "true"
