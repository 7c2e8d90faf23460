# The project's images, from one Dockerfile and one Pipfile.lock. Each target
# installs only the Pipfile categories its code imports (see Pipfile):
#   web                        the web service, category `web`:
#                                docker build --target web -t ride-duration-web .
#   scoring                    the monthly scoring function, categories `lambda batch`:
#                                score_function.lambda_handler    (CMD)
#   lambda  (the default, last) the stream functions, category `lambda`:
#                                lambda_function.lambda_handler   (CMD)
#                                decision_function.lambda_handler (ImageConfig.Command in template.yaml)
# The stream functions stay under Lambda's 250 MB Zip limit this way; parquet
# (pyarrow) alone would take half of it, so it is only where batch scoring runs.
#
# A weight-table model, which is what training logs for the course's linear
# family, needs no scikit-learn. A Lambda serving a model that does (another
# estimator, or a course model.bin pickle) needs it added:
#   docker build --target lambda --build-arg EXTRA_CATEGORIES=sklearn .
# (with SAM: DockerBuildArgs in the functions' Metadata).
#
# In every target: --deploy fails the build if Pipfile.lock is out of date
# with Pipfile; --system installs into the image's Python (no virtualenv);
# --categories installs those categories' locked packages and nothing else
# (not [packages], the whole project, nor [dev-packages]).

# Same pipenv as tools/requirements.txt.
ARG PIPENV_VERSION=2026.10.3

# ---------------------------------------------------------------------------
# web: gunicorn serving model_service.web:app on port 9696 (gunicorn.conf.py),
# as a non-root user; the model comes from MODEL_URI at run time:
#   docker run -it --rm -p 9696:9696 -e MODEL_URI=s3://bucket/prefix/model ride-duration-web
FROM python:3.11-slim AS web
ARG PIPENV_VERSION

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Dependencies first, so this layer stays cached while only the code changes.
COPY Pipfile Pipfile.lock ./
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories web \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache \
    && groupadd --gid 10001 web \
    && useradd --no-log-init --create-home --uid 10001 --gid web web

# Exactly what the web service imports and gunicorn reads; tests/http/test_web_image.py
# starts gunicorn from a copy of these files alone.
COPY model_service/ ./model_service/
COPY gunicorn.conf.py ./

# Numeric, so a runtime that refuses root (runAsNonRoot) can check it without the image's passwd.
USER 10001:10001
EXPOSE 9696
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9696/health', timeout=4)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "model_service.web:app"]

# ---------------------------------------------------------------------------
# The Lambda images. AWS Lambda base image for Python 3.11, pinned to a dated
# tag so rebuilds are reproducible; bump it deliberately to pick up runtime patches.
FROM public.ecr.aws/lambda/python:3.11.2026.02.28.00 AS lambda-base

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1

WORKDIR ${LAMBDA_TASK_ROOT}
# Dependencies first, so their layer stays cached while only the code changes.
COPY Pipfile Pipfile.lock ./


FROM lambda-base AS scoring
ARG PIPENV_VERSION
ARG EXTRA_CATEGORIES=""
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories "lambda batch ${EXTRA_CATEGORIES}" \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache
COPY model_service/ ./model_service/
COPY score_function.py ./
CMD ["score_function.lambda_handler"]


FROM lambda-base AS lambda
ARG PIPENV_VERSION
ARG EXTRA_CATEGORIES=""
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories "lambda ${EXTRA_CATEGORIES}" \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache
COPY model_service/ ./model_service/
COPY lambda_function.py decision_function.py ./
CMD ["lambda_function.lambda_handler"]
