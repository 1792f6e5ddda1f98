"""A real S3-compatible server on localhost (moto's server mode), started once for these tests.

`make test-remote` installs moto in a venv of its own and sets LOSSACC_REMOTE_TESTS=required,
under which a server that cannot start (or moto missing) fails instead of skipping.
"""

from __future__ import annotations

import os

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("LOSSACC_REMOTE_TESTS") == "required":
        pytest.fail(f"remote tests required but {reason}", pytrace=False)
    pytest.skip(f"{reason}; `make test-remote` installs it and runs these tests")


@pytest.fixture(scope="session")
def s3_server():
    """``{"endpoint": "http://127.0.0.1:PORT", ...}``: the environment a user would set."""
    try:
        from moto.server import ThreadedMotoServer
        import boto3  # noqa: F401 - moto's own dependency; the tests upload with it
    except ImportError:
        _unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
    except Exception as exc:  # noqa: BLE001 - whatever stops it, the tests cannot run
        _unavailable(f"the S3 server could not start ({exc})")
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    yield env
    server.stop()
