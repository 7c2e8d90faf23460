# Two images from one Dockerfile:
#   web     the web service:  docker build --target web -t ride-duration-web .
#   (last)  the Lambda image shared by both stream consumers, the default target:
#             docker build -t ride-duration .
#
# ---------------------------------------------------------------------------
# web: gunicorn serving model_service.web:app on port 9696 (gunicorn.conf.py),
# as a non-root user; the model comes from MODEL_URI at run time:
#   docker run -it --rm -p 9696:9696 -e MODEL_URI=s3://bucket/prefix/model ride-duration-web
FROM python:3.11-slim AS web

# Same pipenv as tools/requirements.txt.
ARG PIPENV_VERSION=2026.10.3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app

# Dependencies first, so this layer stays cached while only the code changes.
# --deploy fails the build if Pipfile.lock is out of date with Pipfile; --system
# installs into the image's Python. This installs [packages]; once the Pipfile
# has one package category per deployment, it installs the web service's only.
COPY Pipfile Pipfile.lock ./
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache \
    && groupadd --gid 10001 web \
    && useradd --no-log-init --create-home --uid 10001 --gid web web

# Exactly what the web service imports and gunicorn reads; tests/test_web_image.py
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
# Lambda container image shared by both stream consumers:
#   prediction: lambda_function.lambda_handler   (default CMD)
#   decision:   decision_function.lambda_handler (ImageConfig.Command in template.yaml)
#
# AWS Lambda base image for Python 3.11, pinned to a dated tag so rebuilds are
# reproducible; bump it deliberately to pick up runtime patches.
FROM public.ecr.aws/lambda/python:3.11.2026.02.28.00

# Same pipenv as tools/requirements.txt.
ARG PIPENV_VERSION=2026.10.3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1

WORKDIR ${LAMBDA_TASK_ROOT}

# Dependencies first, so this layer stays cached while only the code changes.
# --deploy fails the build if Pipfile.lock is out of date with Pipfile;
# --system installs into the image's Python (no virtualenv), where the Lambda
# runtime looks. Only [packages] are installed, not [dev-packages].
COPY Pipfile Pipfile.lock ./
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache

COPY model_service/ ./model_service/
COPY lambda_function.py decision_function.py ./

CMD ["lambda_function.lambda_handler"]
