#!/usr/bin/env bash
# The main job: compare every update rule of symopt (and the blog's and the book's forms)
# on image data, writing figures and a results table to results/.
#
# What it does:
#   1. creates .venv (if missing) and installs symopt with the examples' extras into it;
#   2. runs `symopt compare` (symopt.lab.compare): each of the 24 forms trains the
#      blog's 784-600-10 tanh MLP (mini-batches of 100, the same initial weights for
#      all) for 10 epochs, scored on a held-out validation set after each epoch and on the test set at the end.
#
# Data: the full Fashion-MNIST when it is installed in /usr/share/datasets/fashion-mnist
# (50000 training / 10000 validation / 10000 test images, 500 steps per epoch: about
# 1.5-3 minutes per form on 2 cores, so roughly an hour for all 24), else the subset
# shipped with symopt (4167 / 833 / 1000 images, 42 steps per epoch: the training is a
# few minutes in all; compiling each form's step adds 10-60 s per form the first time,
# less once PyTensor's cache is warm).
# For the quick run on a machine that has the full data: `bash scripts/main.sh --data embedded`.
#
# Progress: a tqdm bar on a terminal, one line per epoch with elapsed time and ETA when the
# output goes to a log (`bash scripts/main.sh > main.log 2>&1`); --no-progress turns it off.
#
# Outputs in results/: comparison.md / .csv / .json (one row per form), library.png and
# texts.png (training and validation cost and accuracy per epoch), summary.png (final
# validation accuracy per form), histories/ (every run as JSON and CSV).
#
# Extra arguments go to `symopt compare`, e.g.
#   bash scripts/main.sh --epochs 5 --rules adam,sgd,book.adam --lr sgd=0.1
#   bash scripts/main.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/pip install -q -e ".[examples]"
exec .venv/bin/symopt compare --out results "$@"
