"""The DICOM side of ``gliograde serve``: a Storage SCP (pynetdicom) that accepts MR images,
spools each one durably before it says so, and a Storage SCU that sends the SR back.

Only the MR image storage classes are offered (MR, enhanced MR, enhanced MR colour, legacy
converted enhanced MR), with Verification (C-ECHO): other SOP classes are rejected when the
association is negotiated. ``allow`` lists the calling AE titles accepted; others are rejected
at association. An instance that does not fit the spool (``--max-spool``, or the disk) is
answered 0xA700, out of resources: never acknowledged without being kept.
"""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass
from pathlib import Path

from gliograde.core.console import say
from gliograde.core.errors import UsageError
from gliograde.serve.spool import Spool

MR_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.3",  # Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
)
OUT_OF_RESOURCES = 0xA700
TIMEOUT_S = 30
CANNOT_UNDERSTAND = 0xC210


@dataclass(frozen=True)
class Peer:
    """A DICOM node: ``HOST:PORT:AET``."""

    host: str
    port: int
    ae_title: str

    @classmethod
    def parse(cls, text: str) -> Peer:
        parts = str(text).rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2]:
            raise UsageError(
                f"--send-to {text}: give HOST:PORT:AET, such as 127.0.0.1:4242:ORTHANC"
            )
        return cls(parts[0], int(parts[1]), parts[2])

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Tls:
    """TLS for the node's associations, through pynetdicom's SSL contexts."""

    cert: Path
    key: Path
    ca: Path | None = None  # to verify the peers' certificates

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        if self.ca is not None:
            context.load_verify_locations(str(self.ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def storage_ae(ae_title: str, allow: tuple[str, ...]):
    """The SCP's application entity: MR storage and Verification, callers from ``allow``."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES

    # pynetdicom makes its SOP classes at import time, out of its type hints' sight
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=ae_title)
    for sop_class in MR_STORAGE:
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    if allow:
        ae.require_calling_aet = list(allow)
    return ae


def on_store(event, spool: Spool) -> int:
    """A C-STORE: the instance written durably, then acknowledged; 0xA700 when it does not fit
    (``--max-spool``, or the disk full), never acknowledged without being kept."""
    data = event.encoded_dataset(include_meta=True)
    dataset = event.dataset
    study, sop = dataset.get("StudyInstanceUID"), dataset.get("SOPInstanceUID")
    if not study or not sop:
        say("serve: an instance without StudyInstanceUID or SOPInstanceUID refused")
        return CANNOT_UNDERSTAND
    try:
        kept = spool.keep(str(study), str(sop), data)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise  # pynetdicom answers it as a failure (0xC211), and logs it
        kept = None
    if kept is None:
        say(f"serve: spool full ({spool.root}): an instance refused with 0xA700")
        return OUT_OF_RESOURCES
    return 0x0000


def start_node(ae_title: str, address: tuple[str, int], spool: Spool, options: dict):
    """The SCP, serving in its own threads; ``options``: ``allow`` (AE titles) and ``tls``."""
    from pynetdicom import evt

    ae = storage_ae(ae_title, tuple(options.get("allow") or ()))
    tls = options.get("tls")
    return ae.start_server(
        address,
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store, [spool])],
        ssl_context=tls.server_context() if tls else None,
    )


def send_files(files: list[Path], peer: Peer, ae_title: str) -> str | None:
    """C-STORE each file to ``peer`` (the SR first, then the Parametric Map and the key
    images); None when every object ``peer`` accepts was stored, else why not (one line). A
    kind of object the PACS refuses at association (one that takes no Parametric Map, say) is
    left out and said in the log: the answer still reaches it."""
    from pydicom import dcmread
    from pynetdicom import AE

    datasets = [dcmread(path) for path in files]
    ae = AE(ae_title=ae_title)
    for sop_class in dict.fromkeys(str(ds.SOPClassUID) for ds in datasets):
        ae.add_requested_context(sop_class)
    # a PACS that drops packets must not hold the node's loop for long
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        return f"{peer}: association refused or unreachable"
    try:
        accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
        for ds in datasets:
            what = "the SR" if ds.Modality == "SR" else str(ds.SOPClassUID.name)
            if str(ds.SOPClassUID) not in accepted:
                if ds.Modality == "SR":
                    return f"{peer}: it does not take {ds.SOPClassUID.name}"
                say(f"serve: {peer} does not take {what}: not sent")
                continue
            code = getattr(assoc.send_c_store(ds), "Status", None)
            if code != 0x0000:
                return f"{peer}: C-STORE of {what} answered {code if code is None else hex(code)}"
    finally:
        assoc.release()
    return None
