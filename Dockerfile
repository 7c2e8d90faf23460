# Lambda container image (target `lambda`) of every handler, `*_function.py`:
#   prediction: lambda_function.lambda_handler   (default CMD)
#   the others: <name>_function.lambda_handler   (ImageConfig.Command in template.yaml)
#
# It installs only the Pipfile categories its handlers import (see Pipfile):
# `lambda` and `batch`. That serves a weight-table model, which is what
# training logs for the course's linear family. A model that needs
# scikit-learn (another estimator, or a course model.bin pickle) needs it added:
#   docker build --target lambda --build-arg EXTRA_CATEGORIES=sklearn .
# (with SAM: DockerBuildArgs in the functions' Metadata).
#
# AWS Lambda base image for Python 3.11, pinned to a dated tag so rebuilds are
# reproducible; bump it deliberately to pick up runtime patches.
FROM public.ecr.aws/lambda/python:3.11.2026.02.28.00 AS lambda

# Same pipenv as tools/requirements.txt.
ARG PIPENV_VERSION=2026.10.3
ARG EXTRA_CATEGORIES=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1

WORKDIR ${LAMBDA_TASK_ROOT}

# Dependencies first, so this layer stays cached while only the code changes.
# --deploy fails the build if Pipfile.lock is out of date with Pipfile;
# --system installs into the image's Python (no virtualenv), where the Lambda
# runtime looks; --categories installs those categories' locked packages and
# nothing else (not [packages], the whole project, nor [dev-packages]).
COPY Pipfile Pipfile.lock ./
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories "lambda batch ${EXTRA_CATEGORIES}" \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache

COPY model_service/ ./model_service/
COPY *_function.py ./

CMD ["lambda_function.lambda_handler"]
