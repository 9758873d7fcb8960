"""``gliograde serve``: a DICOM node that grades the MR studies a PACS sends it and sends the SR
back (:mod:`gliograde.serve`)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from gliograde.cli.common import Device, DeviceOption, PrecisionOption, grading_precision, say
from gliograde.core.errors import UsageError


def serve(
    run: Annotated[Path | None, typer.Argument(help="The trained run that grades.")] = None,
    spool: Annotated[
        Path | None, typer.Option(help="Folder that keeps every image received (0700).")
    ] = None,
    send_to: Annotated[
        str | None, typer.Option(help="Where SRs go: HOST:PORT:AET (your PACS).")
    ] = None,
    ae_title: Annotated[str, typer.Option(help="This node's AE title.")] = "GLIOGRADE",
    port: Annotated[int, typer.Option(help="The port it listens on.")] = 11112,
    host: Annotated[
        str, typer.Option(help="The address it listens on (default: this machine only).")
    ] = "127.0.0.1",
    allow: Annotated[
        str | None, typer.Option(help="Calling AE titles accepted, comma-separated (default: any).")
    ] = None,
    settle: Annotated[
        float, typer.Option(help="Seconds without a new image before a study is graded.")
    ] = 30.0,
    force: Annotated[
        bool, typer.Option(help="Grade studies unlike the training data too (flagged uncertain).")
    ] = False,
    max_spool: Annotated[
        float | None,
        typer.Option(help="Largest spool in MB; beyond it images are refused (0xA700)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="TLS: this node's certificate (PEM).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS: its private key (PEM).")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(help="TLS: CA that callers' certificates must chain to.")
    ] = None,
    status: Annotated[
        Path | None, typer.Option(help="List the studies of this spool and exit.")
    ] = None,
    device: DeviceOption = Device.auto,
    precision: PrecisionOption = None,
):
    """A DICOM node: receive MR studies, grade each, send the DICOM SR into the patient's study."""
    from gliograde.serve.node import Peer, Tls
    from gliograde.serve.spool import status_lines
    from gliograde.serve.worker import Node, ServeConfig

    if status is not None:
        for line in status_lines(status):
            typer.echo(line)
        return
    if run is None or spool is None or send_to is None:
        raise UsageError("give RUN, --spool DIR and --send-to HOST:PORT:AET (or --status DIR)")
    tls = None
    if tls_cert is not None or tls_key is not None:
        if tls_cert is None or tls_key is None:
            raise UsageError("--tls-cert and --tls-key go together")
        tls = Tls(tls_cert, tls_key, tls_ca)
    allowed = tuple(a.strip() for a in allow.split(",") if a.strip()) if allow else ()
    config = ServeConfig(
        run, spool, Peer.parse(send_to), ae_title, host, port, allowed, settle, force,
        max_spool, tls, device.value, grading_precision(precision),
    )  # fmt: skip
    node = Node(config)
    signal.signal(signal.SIGTERM, lambda *_: node.stop.set())
    try:
        node.run()
    except KeyboardInterrupt:
        node.stop.set()
    say("serve: stopped")


COMMANDS = (serve,)
