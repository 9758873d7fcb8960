"""The node's DICOM side in-process: TLS through pynetdicom's SSL contexts, and its options."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from gliograde.core.errors import UsageError
from gliograde.serve.node import Peer, Tls, start_node
from gliograde.serve.spool import Spool
from helpers.orthanc import free_port


def test_send_to_is_host_port_and_ae_title():
    assert Peer.parse("10.0.0.5:104:PACS") == Peer("10.0.0.5", 104, "PACS")
    assert str(Peer.parse("::1:4242:ORTHANC")) == "ORTHANC@::1:4242"
    for bad in ("PACS", "host:port:AET", "host:104:"):
        with pytest.raises(UsageError, match="give HOST:PORT:AET"):
            Peer.parse(bad)


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    cert, key = tmp_path / "node.pem", tmp_path / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def echo(port: int, tls_args=None) -> bool:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", port, ae_title="GLIOGRADE", tls_args=tls_args)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return getattr(status, "Status", None) == 0x0000


def test_with_tls_the_node_answers_over_tls_only(certificate, tmp_path):
    cert, key = certificate
    port = free_port()
    server = start_node("GLIOGRADE", ("127.0.0.1", port), Spool(tmp_path), {"tls": Tls(cert, key)})
    try:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        client.check_hostname = False
        assert echo(port, (client, None))
        assert not echo(port)  # plain DICOM is not understood on a TLS port
    finally:
        server.shutdown()


def test_the_command_says_what_it_needs(tmp_path):
    from helpers.cli import invoke

    assert invoke("serve", tmp_path).exit_code == 2  # no --spool, no --send-to
    result = invoke("serve", tmp_path, "--spool", tmp_path / "s", "--send-to", "h:1:A",
                    "--tls-cert", tmp_path / "c.pem")  # fmt: skip
    assert result.exit_code == 2 and "--tls-cert and --tls-key go together" in result.stderr
    assert invoke("serve", "--status", tmp_path).exit_code == 1  # not a spool
    Spool(tmp_path / "spool").keep("1.2", "1.2.1", b"x")
    result = invoke("serve", "--status", tmp_path / "spool")
    assert result.exit_code == 0 and "received" in result.stdout and "1 images" in result.stdout
