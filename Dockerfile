# Production image for the API, the worker, the migration and bootstrap jobs (`opendom`), and the
# simulators: one image, one command each (docker-compose.yml). Build: `docker build -t opendom .`
#
# The build stage copies exactly what pyproject.toml packages ([tool.setuptools] packages and
# py-modules, with their package data inside them); tests/integration/test_production_template.py
# builds a wheel from the same list, so a package added there and not here fails CI.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml ./
COPY cli ./cli
COPY config ./config
COPY contracts ./contracts
COPY domain ./domain
COPY security ./security
COPY services ./services
COPY sourcing ./sourcing
COPY ledger ./ledger
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
COPY connectors ./connectors
COPY simulators ./simulators
COPY stack ./stack
COPY chaos ./chaos
COPY worker.py ./
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENDOM_MODE=production
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin opendom
# Not root, and nothing of its own to write: the ledger is PostgreSQL, the keys are in it.
USER opendom
WORKDIR /tmp
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
