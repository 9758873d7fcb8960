"""Stopping DDP training on a signal, every rank at the same batch.

Lightning's own SIGTERM handler broadcasts between ranks from inside the handler; when the
signal reaches the ranks at slightly different moments (a scheduler's SIGTERM passed on by
torchrun, Ctrl-C from a terminal and torchrun's echo of it), that broadcast can meet another
collective and the ranks deadlock until torchrun kills them (seen here in most tries). Under
DDP, this callback replaces that handler with one that only sets a flag; at each training
batch's end the ranks agree on the flag (one all-reduce) and all stop there together, with
Lightning's own ``SIGTERMException``, which ``gliograde.train.fit.stopped_cleanly`` turns into
the line saying how to resume.
"""

from __future__ import annotations

import signal
import threading

import lightning as L


class StopTogether(L.Callback):
    """Under DDP: a signal sets a flag; the ranks stop together at a batch's end."""

    def __init__(self):
        self.asked = threading.Event()

    def on_train_start(self, trainer, pl_module) -> None:
        # After Lightning registered its handlers; its teardown puts back the ones before it.
        signal.signal(signal.SIGTERM, lambda signum, frame: self.asked.set())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import torch
        import torch.distributed as dist
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        flag = torch.tensor([1.0 if self.asked.is_set() else 0.0], device=pl_module.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() > 0:
            raise SIGTERMException()
