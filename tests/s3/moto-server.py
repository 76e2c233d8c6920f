"""Runs moto's S3-compatible server on 127.0.0.1 for the blob store tests.

Binds a free port, prints `S3_URL=http://127.0.0.1:<port>` once it accepts connections,
and exits when its stdin reaches EOF, so a test process that dies leaves nothing behind.

Requests must be signed (moto recomputes each SigV4 signature with botocore and answers
`SignatureDoesNotMatch` otherwise): only the keys of `KEYS` are accepted, those of
tests/it/support/s3.rs and scripts/bench-blobs.sh, each allowed every S3 action.
"""
import json
import logging
import sys

import boto3
from moto import settings
from moto.iam.models import iam_backends
from moto.server import ThreadedMotoServer

KEYS = {
    "rookery-test": "rookery-test-secret",
    "rookery-bench": "rookery-bench-secret",
}


def add_users(url: str) -> None:
    """One IAM user per key of `KEYS`, created while authentication is still off."""
    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
    )
    for name in KEYS:
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=policy)
        iam.create_access_key(UserName=name)
    # IAM generates random keys; give each user its fixed pair instead.
    for account in iam_backends.values():
        for backend in account.values():
            for user in backend.list_users("/", None, None):
                if user.name in KEYS:
                    for key in user.access_keys:
                        key.access_key_id = user.name
                        key.secret_access_key = KEYS[user.name]


def main() -> None:
    # Werkzeug logs every request to stderr; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the socket is bound and listening
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    add_users(url)
    # From here on every request's signature is checked.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    print(f"S3_URL={url}", flush=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
