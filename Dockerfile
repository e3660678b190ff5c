# Production image for the API, the worker and the simulators (one image, three commands).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
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
RUN pip install --no-cache-dir .
ENV PYTHONUNBUFFERED=1
CMD ["uvicorn", "--factory", "api.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
