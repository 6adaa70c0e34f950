"""Checkpoints of a whole sweep with Orbax: the device state of every config (params, optimizer states, alive
masks), the curves recorded so far and the data position, plus a fingerprint of the sweep, so a checkpoint is
only ever resumed by the same sweep."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from optax_warmup._extras import require


class Saver:
    """Saves and restores one sweep's checkpoints in ``directory`` (the newest one is kept)."""

    def __init__(self, directory: str, fingerprint: Mapping[str, Any], meaning: Mapping[str, str] | None = None):
        self.ocp = require("orbax.checkpoint", "sweep", "checkpoint_dir")
        self.directory = os.path.abspath(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back from JSON
        self.manager = self.ocp.CheckpointManager(
            self.directory, options=self.ocp.CheckpointManagerOptions(max_to_keep=1, create=True))
        self.latest = self.manager.latest_step()
        if self.latest is not None:  # refuse a foreign checkpoint now, before anything compiles
            meta = self._restore(self.ocp.args.Composite(meta=self.ocp.args.JsonRestore()))["meta"]
            if meta.get("fingerprint") != self.fingerprint:
                differs = sorted(k for k in {*self.fingerprint, *meta.get("fingerprint", {})}
                                 if self.fingerprint.get(k) != meta.get("fingerprint", {}).get(k))
                what = "; ".join((meaning or {}).get(k, k) for k in differs)
                raise ValueError(f"checkpoint_dir: {self.directory!r} holds the checkpoint of a different sweep "
                                 f"(it differs in {what}); use another directory, or delete it to start over")
            self.meta = meta

    def _restore(self, args):
        return self.manager.restore(self.latest, args=args)

    def save(self, step: int, states, host: Mapping[str, Any]) -> None:
        arrays = {k: v for k, v in host.items() if not isinstance(v, Mapping) or v}  # orbax skips no empty dict
        meta = dict(fingerprint=self.fingerprint, step=int(step),
                    eval_done=[int(s) for s in host.get("eval_done", [])], host_keys=sorted(arrays))
        arrays.pop("eval_done", None)
        arrays.pop("step", None)
        args = self.ocp.args.Composite(state=self.ocp.args.StandardSave(states),
                                       host=self.ocp.args.PyTreeSave(arrays), meta=self.ocp.args.JsonSave(meta))
        self.manager.save(int(step), args=args, force=True)
        self.manager.wait_until_finished()
        self.latest = int(step)

    def restore(self, states_template):
        """``(states, host)`` of the newest checkpoint, or ``None`` when there is none."""
        if self.latest is None:
            return None
        abstract = jax.tree.map(self.ocp.utils.to_shape_dtype_struct, states_template)
        out = self._restore(self.ocp.args.Composite(state=self.ocp.args.StandardRestore(abstract),
                                                    host=self.ocp.args.PyTreeRestore()))
        host = {k: _numpy(v) for k, v in out["host"].items()}
        host.setdefault("eval", {})
        host["step"] = self.meta["step"]
        host["eval_done"] = self.meta["eval_done"]
        return out["state"], host


def _numpy(tree):
    return jax.tree.map(np.asarray, tree)
