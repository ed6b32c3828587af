"""The CPU demo: SEED from a packaged ImageNet teacher into a tiny student on Fashion-MNIST.

``bash scripts/distill/demo/seed_demo.sh [--quick]`` runs :mod:`seed_solo.demo.run`.
"""
