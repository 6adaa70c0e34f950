"""What the gallery draws: every public schedule with representative arguments, every warmup shape, every decay
shape of the warmup-stable-decay schedule and every peer schedule of ``optax_warmup.compat``.

Each case is the Python expression shown under its figure; ``schedule_gallery.py`` evaluates it at build time
(``ow`` is ``optax_warmup``, ``optax`` is Optax) and draws it over ``steps`` counts. ``tests/test_docs.py``
checks that the cases cover every public schedule factory and every shape name.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    title: str  # the caption's heading: the name of what is drawn
    code: str  # a Python expression that builds the schedule
    api: str | None  # the documented function it shows, linked from the caption
    steps: int = 1000  # drawn over counts 0 .. steps - 1
    log_y: bool = False


def _shape(shape: str) -> Case:
    init = 0.01 if shape == "geometric" else 0.0  # a geometric ramp needs init_value > 0
    return Case(f'warmup_shape="{shape}"', f'ow.warmup_schedule({init}, 1.0, 500, warmup_shape="{shape}")',
                "optax_warmup.warmup_schedule")


def _decay_shape(shape: str) -> Case:
    end = 0.01 if shape == "exponential" else 0.0  # a geometric decay needs end_value > 0
    return Case(f'decay_shape="{shape}"',
                f'ow.warmup_stable_decay_schedule(0.0, 1.0, 100, 500, 400, end_value={end}, decay_shape="{shape}")',
                "optax_warmup.warmup_stable_decay_schedule")


def _peer(function: str, name: str, arguments: str, steps: int = 1000) -> Case:
    return Case(f'{function}("{name}")', f'ow.compat.{function}("{name}", {arguments})',
                f"optax_warmup.compat.{function}", steps)


GROUPS: dict[str, list[Case]] = {
    "warmup-shapes": [_shape(s) for s in ("linear", "cosine", "polynomial", "geometric", "exponential")],
    "decay-shapes": [_decay_shape(s) for s in ("linear", "cosine", "1-sqrt", "square", "exponential")],
    "optax": [
        Case("constant_schedule", "ow.constant_schedule(1.0)", "optax_warmup.constant_schedule"),
        Case("linear_schedule", "ow.linear_schedule(1.0, 0.1, transition_steps=600, transition_begin=200)",
             "optax_warmup.linear_schedule"),
        Case("polynomial_schedule", "ow.polynomial_schedule(1.0, 0.0, power=2, transition_steps=800)",
             "optax_warmup.polynomial_schedule"),
        Case("cosine_decay_schedule", "ow.cosine_decay_schedule(1.0, decay_steps=800, alpha=0.1)",
             "optax_warmup.cosine_decay_schedule"),
        Case("exponential_decay", "ow.exponential_decay(1.0, transition_steps=100, decay_rate=0.7)",
             "optax_warmup.exponential_decay"),
        Case("exponential_decay(staircase=True)",
             "ow.exponential_decay(1.0, transition_steps=200, decay_rate=0.5, staircase=True)",
             "optax_warmup.exponential_decay"),
        Case("piecewise_constant_schedule",
             "ow.piecewise_constant_schedule(1.0, boundaries=[300, 600, 800], scales=[0.5, 0.5, 0.2])",
             "optax_warmup.piecewise_constant_schedule"),
        Case("piecewise_interpolate_schedule",
             'ow.piecewise_interpolate_schedule("cosine", 0.1, boundaries=[200, 600], scales=[10.0, 0.1])',
             "optax_warmup.piecewise_interpolate_schedule"),
        Case("linear_onecycle_schedule", "ow.linear_onecycle_schedule(transition_steps=1000, peak_value=1.0)",
             "optax_warmup.linear_onecycle_schedule"),
        Case("cosine_onecycle_schedule", "ow.cosine_onecycle_schedule(transition_steps=1000, peak_value=1.0)",
             "optax_warmup.cosine_onecycle_schedule"),
        Case("join_schedules",
             "ow.join_schedules([ow.warmup_schedule(0.0, 1.0, 100), ow.constant_schedule(0.6),\n"
             "                   ow.cosine_decay_schedule(0.6, 400)], boundaries=[300, 600])",
             "optax_warmup.join_schedules"),
        Case("sgdr_schedule",
             "ow.sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=50, decay_steps=250),\n"
             "                  dict(init_value=0.0, peak_value=0.7, warmup_steps=50, decay_steps=350),\n"
             "                  dict(init_value=0.0, peak_value=0.5, warmup_steps=50, decay_steps=400)])",
             "optax_warmup.sgdr_schedule"),
        Case("warmup_constant_schedule", "ow.warmup_constant_schedule(0.0, 1.0, warmup_steps=200)",
             "optax_warmup.warmup_constant_schedule"),
        Case("warmup_cosine_decay_schedule",
             "ow.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=100, decay_steps=1000, end_value=0.1)",
             "optax_warmup.warmup_cosine_decay_schedule"),
        Case("warmup_exponential_decay_schedule",
             "ow.warmup_exponential_decay_schedule(0.0, 1.0, warmup_steps=100, transition_steps=100,\n"
             "                                     decay_rate=0.7, end_value=0.05)",
             "optax_warmup.warmup_exponential_decay_schedule"),
    ],
    "warmup-first": [
        Case("warmup_linear_decay_schedule",
             "ow.warmup_linear_decay_schedule(0.0, 1.0, warmup_steps=100, decay_steps=1000, end_value=0.1)",
             "optax_warmup.warmup_linear_decay_schedule"),
        Case("warmup_polynomial_decay_schedule",
             "ow.warmup_polynomial_decay_schedule(0.0, 1.0, warmup_steps=100, decay_steps=1000, power=2)",
             "optax_warmup.warmup_polynomial_decay_schedule"),
        Case("warmup_rsqrt_schedule", "ow.warmup_rsqrt_schedule(0.0, 1.0, warmup_steps=100)",
             "optax_warmup.warmup_rsqrt_schedule"),
        Case("noam_schedule", "ow.noam_schedule(d_model=512, warmup_steps=200)", "optax_warmup.noam_schedule"),
        Case("warmup_stable_decay_schedule",
             'ow.warmup_stable_decay_schedule(0.0, 1.0, warmup_steps=100, stable_steps=600, decay_steps=300,\n'
             '                                decay_shape="1-sqrt")',
             "optax_warmup.warmup_stable_decay_schedule"),
        Case("warmup_stable_decay_cycles_schedule",
             "ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, warmup_steps=50, boundaries=[400, 700, 1000],\n"
             "                                       rewarmup_steps=30, rewarmup_value=0.3)",
             "optax_warmup.warmup_stable_decay_cycles_schedule"),
        Case("warmup_cosine_restarts_schedule",
             "ow.warmup_cosine_restarts_schedule(0.0, 1.0, warmup_steps=30, cycle_steps=150, cycle_mult=2,\n"
             "                                   peak_decay=0.7)",
             "optax_warmup.warmup_cosine_restarts_schedule"),
        Case("power_schedule",
             "ow.power_schedule(1e-2, warmup_steps=100, total_steps=1000, decay_steps=200, batch_size=256,\n"
             "                  seq_len=512)",
             "optax_warmup.power_schedule"),
    ],
    "warmups": [
        Case("warmup_schedule", "ow.warmup_schedule(0.0, 1.0, warmup_steps=300)", "optax_warmup.warmup_schedule"),
        Case("warmup_factor", 'ow.warmup_factor(300, init_factor=0.1, warmup_shape="cosine")',
             "optax_warmup.warmup_factor"),
        Case("with_warmup", "ow.with_warmup(optax.cosine_decay_schedule(1.0, 800), warmup_steps=200)",
             "optax_warmup.with_warmup"),
        Case("warmup_overlay", "ow.warmup_overlay(optax.cosine_decay_schedule(1.0, 1000), warmup_steps=200)",
             "optax_warmup.warmup_overlay"),
        Case("untuned_warmup (linear)", "ow.untuned_warmup(0.998)", "optax_warmup.untuned_warmup"),
        Case("untuned_warmup (exponential)", 'ow.untuned_warmup(0.998, warmup_shape="exponential")',
             "optax_warmup.untuned_warmup"),
        Case("radam_warmup", "ow.radam_warmup(0.999)", "optax_warmup.radam_warmup", steps=3000),
    ],
    "engine": [
        Case("phase_schedule",
             'ow.phase_schedule([ow.Phase(100, 0.0, 1.0, "cosine"), ow.Phase(400, 1.0, 1.0),\n'
             '                   ow.Phase(500, 1.0, 0.0, "1-sqrt")])',
             "optax_warmup.phase_schedule"),
        Case("schedule_in_tokens",
             "ow.schedule_in_tokens(ow.warmup_cosine_decay_schedule(0.0, 1.0, 20e6, 500e6),\n"
             '                      ow.batch_size_ramp("0:128 40M:256 120M:512", seq_len=1024, micro_batch_size=128))',
             "optax_warmup.schedule_in_tokens"),
    ],
    "hf": [
        _peer("hf_schedule", "linear", "1.0, 100, 1000"),
        _peer("hf_schedule", "cosine", "1.0, 100, 1000"),
        _peer("hf_schedule", "cosine_with_restarts", "1.0, 100, 1000, num_cycles=3"),
        _peer("hf_schedule", "polynomial", "1.0, 100, 1000, lr_end=0.1, power=2.0"),
        _peer("hf_schedule", "constant", "1.0"),
        _peer("hf_schedule", "constant_with_warmup", "1.0, 100"),
        _peer("hf_schedule", "inverse_sqrt", "1.0, 100"),
        _peer("hf_schedule", "cosine_with_min_lr", "1.0, 100, 1000, min_lr_rate=0.1"),
        _peer("hf_schedule", "cosine_warmup_with_min_lr", "1.0, 100, 1000, min_lr_rate=0.1, warmup_lr_rate=0.2"),
        _peer("hf_schedule", "warmup_stable_decay",
              '1.0, 100, 1000, num_decay_steps=300, decay_type="1-sqrt", min_lr_ratio=0.1'),
    ],
    "torch": [
        _peer("torch_schedule", "ConstantLR", "1.0, factor=1/3, total_iters=300"),
        _peer("torch_schedule", "LinearLR", "1.0, start_factor=0.01, total_iters=300"),
        _peer("torch_schedule", "ExponentialLR", "1.0, gamma=0.995"),
        _peer("torch_schedule", "StepLR", "1.0, step_size=300, gamma=0.5"),
        _peer("torch_schedule", "MultiStepLR", "1.0, milestones=[300, 700], gamma=0.3"),
        _peer("torch_schedule", "PolynomialLR", "1.0, total_iters=800, power=2.0"),
        _peer("torch_schedule", "CosineAnnealingLR", "1.0, T_max=400, eta_min=0.1"),
        _peer("torch_schedule", "CosineAnnealingWarmRestarts", "1.0, T_0=100, T_mult=2"),
        _peer("torch_schedule", "OneCycleLR", "max_lr=1.0, total_steps=1000, cycle_momentum=False"),
        _peer("torch_schedule", "CyclicLR",
              'base_lr=0.1, max_lr=1.0, step_size_up=150, mode="triangular2", cycle_momentum=False'),
        _peer("torch_schedule", "SequentialLR",
              '1.0, schedulers=[("LinearLR", {"start_factor": 0.01, "total_iters": 100}),\n'
              '                 ("CosineAnnealingLR", {"T_max": 900})], milestones=[100]'),
        _peer("torch_schedule", "LambdaLR", "1.0, lr_lambda=lambda e: 0.5 ** (e // 250)"),
        _peer("torch_schedule", "MultiplicativeLR", "1.0, lr_lambda=lambda e: 0.997 + 0.0 * e"),
        _peer("torch_schedule", "ChainedScheduler",
              '1.0, schedulers=[("LinearLR", {"start_factor": 0.01, "total_iters": 100}),\n'
              '                 ("ExponentialLR", {"gamma": 0.998})]'),
        _peer("torch_schedule", "SWALR", "1.0, swa_lr=0.2, anneal_epochs=300"),
    ],
    "timm": [
        _peer("timm_schedule", "cosine",
              "1.0, t_initial=900, lr_min=0.05, warmup_t=100, warmup_lr_init=0.01, warmup_prefix=True"),
        _peer("timm_schedule", "tanh", "1.0, t_initial=900, warmup_t=100, warmup_lr_init=0.01, warmup_prefix=True"),
        _peer("timm_schedule", "wsd", "1.0, t_initial=900, decay_t=300, warmup_t=100"),
        _peer("timm_schedule", "step", "1.0, decay_t=200, decay_rate=0.5, warmup_t=50, warmup_lr_init=0.01"),
        _peer("timm_schedule", "multistep", "1.0, decay_t=[300, 700], decay_rate=0.3"),
        _peer("timm_schedule", "poly", "1.0, t_initial=1000, power=0.5"),
    ],
    "keras": [
        _peer("keras_schedule", "CosineDecay",
              "initial_learning_rate=0.0, decay_steps=900, warmup_target=1.0, warmup_steps=100"),
        _peer("keras_schedule", "CosineDecayRestarts", "initial_learning_rate=1.0, first_decay_steps=100, t_mul=2.0"),
        _peer("keras_schedule", "ExponentialDecay",
              "initial_learning_rate=1.0, decay_steps=200, decay_rate=0.5, staircase=True"),
        _peer("keras_schedule", "PolynomialDecay",
              "initial_learning_rate=1.0, decay_steps=300, end_learning_rate=0.1, power=2.0, cycle=True"),
        _peer("keras_schedule", "PiecewiseConstantDecay", "boundaries=[300, 700], values=[1.0, 0.5, 0.1]"),
        _peer("keras_schedule", "InverseTimeDecay", "initial_learning_rate=1.0, decay_steps=100, decay_rate=0.5"),
    ],
    "pytorch-warmup": [
        _peer("pytorch_warmup_schedule", "LinearWarmup", "1.0, warmup_period=300"),
        _peer("pytorch_warmup_schedule", "ExponentialWarmup", "1.0, warmup_period=150"),
        _peer("pytorch_warmup_schedule", "UntunedLinearWarmup", "1.0, beta2=0.998"),
        _peer("pytorch_warmup_schedule", "UntunedExponentialWarmup", "1.0, beta2=0.998"),
        _peer("pytorch_warmup_schedule", "RAdamWarmup", "1.0, beta2=0.999", steps=3000),
    ],
}
