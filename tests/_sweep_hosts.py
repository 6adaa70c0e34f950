"""One sweep of the tests' regression task, written to an .npz: run as ``python tests/_sweep_hosts.py OUT`` (one
process, all its devices) or ``... OUT PORT NUM_PROCESSES PROCESS_ID`` (``jax.distributed`` on localhost over
gloo). tests/test_sweep_state.py compares 2 processes x 2 devices with 1 process x 4 devices."""

import os
import sys

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str]) -> None:
    out = argv[0]
    if len(argv) > 1:
        port, n, pid = argv[1], int(argv[2]), int(argv[3])
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=n, process_id=pid)
    import numpy as np
    import sweep_tasks as T

    from optax_warmup import sweep

    grid = {"peak_value": [1e-2, 1e-1, 1e30], "warmup_steps": [0, "25%"], "seed": [0, 1]}
    result = sweep.run(T.device_task(eval_batches=T.eval_batches()), T.adamw, T.STEPS, grid, progress=False,
                       eval_every=12, strategy="loop")
    if jax.process_index() == 0:
        np.savez(out, loss=result.curves["loss"], eval_loss=result.eval["loss"], diverged=result.diverged_step,
                 devices=result.settings["devices"], processes=result.settings["processes"])


if __name__ == "__main__":
    main(sys.argv[1:])
