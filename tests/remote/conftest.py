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


@pytest.fixture(scope="session")
def s3_server_with_auth(s3_server):
    """A second server, in a process of its own, that checks credentials (moto accepts any by
    default): ``{"AWS_ENDPOINT_URL": ...}``."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen([sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1",
                               "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _unavailable("the S3 server with credential checks could not start")
            time.sleep(0.2)
    yield {**s3_server, "AWS_ENDPOINT_URL": endpoint}
    server.terminate()
    server.wait(timeout=10)
