# dockerma archs: amd64 , arm64 , armhf
ARG REGISTRY=localhost:5000
ARG PYTHON=3.12

FROM ${REGISTRY}/team/python:${PYTHON}-slim AS Base
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /app

FROM base AS deps
COPY requirements.txt .
RUN pip install --no-cache-dir \
      -r requirements.txt \
    && pip check
RUN <<EOF python3
# dockerma is not named here: this is a Python comment inside a heredoc
from pathlib import Path
Path("/app/.ready").write_text("ok")
EOF

FROM base
COPY --from=deps /usr/local/lib/python3.12/site-packages /usr/local/lib/python3.12/site-packages
COPY --from=0 /app /app
COPY . .
# dockerma smoke: python3 -c "import app"
# dockerma smoke: python3 -m app --help
CMD ["python3", "-m", "app"]
