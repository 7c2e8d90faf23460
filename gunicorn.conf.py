"""Gunicorn settings for ``gunicorn --bind=0.0.0.0:9696 model_service.web:app``.

Gunicorn reads this file from the directory it starts in (the repo root, or the
image's working directory); command-line flags and GUNICORN_CMD_ARGS override it.
Sizing comes from Settings (WEB_CONCURRENCY, WEB_THREADS), like every setting.
"""

import gc
import os

from model_service.config import Settings

settings = Settings.from_env()

bind = "0.0.0.0:9696"

# A request is CPU work that holds the GIL (JSON, pydantic, DictVectorizer, a
# sparse dot product), so throughput is one process per core: more processes
# only time-slice the same cores and each holds its own copy of the model. The
# textbook 2*cores+1 is for workers that mostly wait on I/O, which these do not.
# sched_getaffinity counts the CPUs this process may use (taskset/cpuset), not the host's.
workers = settings.web_workers or len(os.sched_getaffinity(0))

# gthread rather than the default sync worker for HTTP keep-alive: sync closes
# the connection after every response, so a client pays a TCP handshake per
# ride. One thread (WEB_THREADS=1) still computes one request per process at a
# time; more threads only contend for the GIL. On 2 cores (bench/web_bench.py,
# runs interleaved, medians): keep-alive gave 15-50% more single-ride requests/s
# than sync at concurrency 8-32; a second thread gave no consistent gain.
worker_class = "gthread"
threads = settings.web_threads

# Load the model once in the master before forking: a model that cannot load
# stops the server at boot with one clear error instead of every worker
# crash-looping, and workers start instantly sharing the master's pages.
preload_app = True

# Gunicorn's runtime control socket (gunicornc) is unused here, and its default
# path is one per user, so two servers on one host (tests, benchmarks) would clash.
control_socket_disable = True


def when_ready(server: object) -> None:
    """After the preloaded app (and its model) is built, before the workers fork.

    The model lives as long as the server: frozen out of the cyclic GC, its
    objects are neither rescanned by every full collection nor copied into each
    worker's memory by the GC touching their pages.
    """
    gc.freeze()
