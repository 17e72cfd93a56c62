"""Reports that outlive the job: health_check.yml with an S3 report location (the session's real SeaweedFS)
uploads the HTML, JSON, Prometheus and Markdown reports, prints where they are, and the objects read back are
the files the run wrote. An upload that fails fails the play, saying where the reports still are."""
import json
import os
import re
import time

from conftest import ansible_playbook

CHECKS = {"health_check_hosts": "localhost", "health_check_categories": ["disk", "memory"],
          "health_check_postgres": False, "health_check_fail_on": "never"}


def store_vars(s3, bucket, report_dir):
    return dict(CHECKS, health_check_report_dir=str(report_dir), report_store_s3_bucket=bucket,
                report_store_s3_prefix="fleet/reports", report_store_presign_seconds=600,
                s3_endpoint_url=s3.endpoint_url, s3_region=s3.region, s3_access_key=s3.access_key,
                s3_secret_key=s3.secret_key)


def test_health_check_report_is_readable_in_the_s3_store_afterwards(s3, bucket, tmp_path):
    started = time.monotonic()
    run = ansible_playbook("health_check.yml", store_vars(s3, bucket, tmp_path))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    uris = re.findall(r"(s3://{0}/fleet/reports/health-check/\d{{8}}T\d{{6}}Z/health-check\.(\w+))".format(bucket),
                      run.stdout)
    assert sorted(ext for _uri, ext in uris) == ["html", "json", "md", "prom"], run.stdout[-3000:]
    assert s3.endpoint_url + "/" + bucket + "/fleet/reports/health-check/" in run.stdout
    assert "X-Amz-Signature=" in run.stdout, run.stdout[-3000:]  # the presigned link
    assert s3.secret_key not in run.stdout
    client = s3.client()
    for uri, ext in uris:
        key = uri.split("/", 3)[3]
        stored = client.get_object(Bucket=bucket, Key=key)
        with open(str(tmp_path / ("health-check." + ext)), "rb") as handle:
            assert stored["Body"].read() == handle.read()
        if ext == "html":
            assert stored["ContentType"].startswith("text/html")
        if ext == "json":
            assert json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())["checks"]
    print("wall time {0:.1f} s".format(time.monotonic() - started))


def test_a_failed_upload_fails_the_play_and_says_where_the_reports_are(s3, bucket, tmp_path):
    extra = store_vars(s3, bucket, tmp_path)
    extra["s3_secret_key"] = "not-" + os.urandom(8).hex()  # the store refuses it
    run = ansible_playbook("health_check.yml", extra)
    assert run.returncode != 0
    assert "Uploading the report {0}".format(tmp_path / "health-check") in run.stdout, run.stdout[-3000:]
    assert "still on" in run.stdout and str(tmp_path / "health-check.html") in run.stdout
    assert os.path.exists(str(tmp_path / "health-check.html"))
