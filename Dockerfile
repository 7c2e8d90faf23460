# The project's Lambda images, one Dockerfile and one Pipfile.lock. Each target
# installs only the Pipfile categories its handlers import (see Pipfile):
#   lambda  (the default, last stage)  the stream functions, categories `lambda`:
#             prediction: lambda_function.lambda_handler   (CMD)
#             decision:   decision_function.lambda_handler (ImageConfig.Command in template.yaml)
#   scoring                            the monthly scoring function, categories `lambda batch`:
#             scoring:    score_function.lambda_handler    (CMD)
# The stream functions stay under Lambda's 250 MB Zip limit this way; parquet
# (pyarrow) alone would take half of it, so it is only where batch scoring runs.
#
# A weight-table model, which is what training logs for the course's linear
# family, needs no scikit-learn. A model that does (another estimator, or a
# course model.bin pickle) needs it added:
#   docker build --target lambda --build-arg EXTRA_CATEGORIES=sklearn .
# (with SAM: DockerBuildArgs in the functions' Metadata).
#
# AWS Lambda base image for Python 3.11, pinned to a dated tag so rebuilds are
# reproducible; bump it deliberately to pick up runtime patches.
FROM public.ecr.aws/lambda/python:3.11.2026.02.28.00 AS lambda-base

# Same pipenv as tools/requirements.txt.
ARG PIPENV_VERSION=2026.10.3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIPENV_NOSPIN=1 \
    PIPENV_VERSION=${PIPENV_VERSION}

WORKDIR ${LAMBDA_TASK_ROOT}
# Dependencies first, so their layer stays cached while only the code changes.
COPY Pipfile Pipfile.lock ./


FROM lambda-base AS scoring
ARG EXTRA_CATEGORIES=""
# --deploy fails the build if Pipfile.lock is out of date with Pipfile;
# --system installs into the image's Python (no virtualenv), where the Lambda
# runtime looks; --categories installs those categories' locked packages and
# nothing else (not [packages], the whole project, nor [dev-packages]).
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories "lambda batch ${EXTRA_CATEGORIES}" \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache
COPY model_service/ ./model_service/
COPY score_function.py ./
CMD ["score_function.lambda_handler"]


FROM lambda-base AS lambda
ARG EXTRA_CATEGORIES=""
# As in `scoring`, with the stream functions' categories only.
RUN pip install --no-cache-dir "pipenv==${PIPENV_VERSION}" \
    && pipenv install --system --deploy --categories "lambda ${EXTRA_CATEGORIES}" \
    && pip uninstall --yes pipenv \
    && rm -rf /root/.cache
COPY model_service/ ./model_service/
COPY lambda_function.py decision_function.py ./
CMD ["lambda_function.lambda_handler"]
