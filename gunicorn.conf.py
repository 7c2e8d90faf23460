"""Gunicorn settings for ``gunicorn --bind=0.0.0.0:9696 model_service.web:app``.

Gunicorn reads this file from the directory it starts in (the repo root, or the
image's working directory); command-line flags and GUNICORN_CMD_ARGS override it.
Sizing comes from Settings (WEB_CONCURRENCY), like every setting.
"""

import gc
import logging
import os
import sys
from typing import Any

import gevent  # type: ignore[import-untyped]

from model_service.config import Settings
from model_service.errors import ServiceError

try:
    settings = Settings.from_env()
except ServiceError as exc:  # one line naming the setting, not a traceback from inside gunicorn's config loader
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

bind = "0.0.0.0:9696"

# A request is CPU work that holds the GIL (parsing, validation, predict,
# encoding), so throughput is one process per core: more processes
# only time-slice the same cores and each holds its own copy of the model. The
# textbook 2*cores+1 is for workers that mostly wait on I/O, which these do not.
# sched_getaffinity counts the CPUs this process may use (taskset/cpuset), not the host's.
workers = settings.web_workers or len(os.sched_getaffinity(0))

# gunicorn's gevent worker: each connection is a greenlet in one event loop
# per worker, so a connection that waits (idle between keep-alive requests, or
# sending its request slowly) holds a few kilobytes, not a thread, up to
# worker_connections (1000) per worker. A request runs on its greenlet from its
# last byte to its answer, CPU work that never yields. gunicorn reads each
# request's line and headers within ``keepalive`` seconds (below) and closes
# the connection otherwise, so clients that trickle their headers are dropped;
# a body that sends nothing for WEB_BODY_TIMEOUT seconds is answered 400
# (model_service/web.py). It was also the cheapest worker per request measured
# here that serves a WSGI app and outlasts slow clients: about 0.38 ms of server
# CPU per single-ride request against 0.58 ms for gthread (which hands every
# request from its poller thread to a pool thread and back), and tornado's
# worker cost about as much as gthread; bench/web_bench.py prints the split.
# gevent's own pywsgi server (worker_class gevent_pywsgi) was cheaper still, but
# without gunicorn's HTTP parser, its header deadline or its hooks. gunicorn
# monkey-patches the worker after the fork; the preloaded app does no I/O of
# its own per request.
worker_class = "gevent"

# How many connections one worker holds at once (WEB_WORKER_CONNECTIONS); past
# them, new connections wait in the listen queue, so it is the ceiling on
# slow clients a worker outlasts. Each waiting connection is a greenlet and a
# socket, a few kilobytes, and is held at most: 2 s for its headers
# (keepalive, below), WEB_BODY_TIMEOUT for its whole body (30 s), then it is
# answered and, if it sends nothing more, dropped after 2 s. So 1000 per
# worker means a client must open more than 1000 / 30 = 33 new slow
# connections a second, per worker, to hold them all; a load balancer in
# front that caps connections per client stops that first (see the README).
worker_connections = settings.web_worker_connections

# For the gevent worker, both how long an idle keep-alive connection is kept
# and how long a client has to send a request's headers (gunicorn's default).
keepalive = 2

# A listening socket per worker (SO_REUSEPORT), so that the kernel spreads new
# connections over the workers. With one shared socket, the worker whose event
# loop wakes first takes the connections waiting: 8 keep-alive connections
# opened at once all went to one worker in 2 runs of 16 here (both the first
# after start), and that worker's core did all the work while the other idled;
# on their own sockets, no run of 16 put more than 57% of the work on one
# worker. A worker that is restarted drops the connections waiting in its own
# socket's queue.
reuse_port = True

# Load the model once in the master before forking: a model that cannot load
# stops the server at boot with one clear error instead of every worker
# crash-looping, and workers start instantly sharing the master's pages.
preload_app = True

# Gunicorn's runtime control socket (gunicornc) is unused here, and its default
# path is one per user, so two servers on one host (tests, benchmarks) would clash.
control_socket_disable = True


class _AddressedListening(logging.Filter):
    """Drops gunicorn's "Listening at:  (PID)": with reuse_port the workers open the sockets, so it has no address."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (record.msg == "Listening at: %s (%s)" and args and not args[0])


def on_starting(server: Any) -> None:
    """Before the master logs where it listens: that line would be empty, and ``when_ready`` says where instead."""
    server.log.error_log.addFilter(_AddressedListening())


def when_ready(server: Any) -> None:
    """After the preloaded app (and its model) is built, before the workers fork.

    The model lives as long as the server: frozen out of the cyclic GC, its
    objects are neither rescanned by every full collection nor copied into each
    worker's memory by the GC touching their pages.
    """
    gc.freeze()
    server.log.info("Listening at: %s, a socket per worker (reuse_port)", ", ".join(server.cfg.bind))


def worker_exit(server: Any, worker: Any) -> None:
    """Free the frozen objects while the worker's modules still exist.

    Left to the interpreter's teardown, the logging handlers among them are
    freed after gevent's patched threading module has been cleared, and each
    worker printed a TypeError traceback as it exited (gevent/gevent#2148).
    """
    gc.unfreeze()
    gc.collect()


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """After each response, a gevent worker serves every other connection that is ready before this one again.

    A greenlet yields only when it would block. When the connection's next
    request has already arrived, as it often has on a busy server, it reads it
    and serves it at once, again and again, while the worker's other
    connections wait: with 8 keep-alive clients, one in a hundred requests
    waited 0.15 to 0.4 s. Waiting here until the event loop is idle serves the
    ready connections in turn: a p99 of 10 to 20 ms in the same runs, for
    about the same CPU per request.
    """
    gevent.idle()
