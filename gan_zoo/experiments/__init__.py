"""Experiments that measure the theory behind GAN training on CPU in a few minutes.

Each is a module run as ``python -m gan_zoo.experiments.NAME --out DIR`` that writes
``DIR/NAME.csv`` and ``DIR/NAME.png`` (``--quick`` for a seconds-long smoke run):

- ``js_vs_w1``: the JS estimate of a trained discriminator saturates at log 2, W1 keeps growing.
- ``lipschitz``: weight clipping vs gradient penalty vs spectral norm on the same 2-D data.
- ``mode_coverage``: every variant on ring8 and grid25 under the PacGAN protocol.

See ``docs/theory.md`` for what each shows.
"""
