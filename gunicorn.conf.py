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

# gthread, with WEB_THREADS (16) threads per worker, so that slow clients cannot
# take the service down. gunicorn hands a connection to a thread once its first
# bytes arrive, and the thread then reads the whole request: a client that
# trickles a byte a second holds one thread for as long as it likes. With one
# thread per worker, 4 such clients stopped a 2-worker server; with 16, a worker
# still answers while 15 of its connections trickle (bench/web_bench.py measures
# normal requests' p99 with 8 of them). Idle keep-alive connections wait in the
# worker's poller, not in a thread. Threads that wait cost no CPU and no GIL; a
# request is still CPU work that holds the GIL, so throughput stays one process
# per core. The sync worker would close the connection after every response
# (a TCP handshake per ride) and hold its one process for a slow client; gevent
# served more requests/s here but starved some connections for 0.3 s and more
# under load. Past a few dozen slow clients, put a buffering proxy in front (a
# load balancer, or nginx with client_body_timeout), which reads each request in
# full before gunicorn sees it.
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
