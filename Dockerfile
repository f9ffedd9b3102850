# Small image, non-root user. Front-end files come from the npm lock file in a build stage.
FROM node:20-slim AS static
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 roledesk
WORKDIR /opt/roledesk
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY docs/required-permissions.json ./docs/required-permissions.json
COPY --from=static /src/node_modules/htmx.org/dist/htmx.min.js ./static/vendor/htmx.min.js
COPY --from=static /src/node_modules/@picocss/pico/css/pico.min.css ./static/vendor/pico.min.css
# Editable, so templates/, static/ and migrations/ are found beside the app package.
RUN pip install --no-compile -e . && mkdir -p /opt/roledesk/data && chown roledesk /opt/roledesk/data
USER roledesk
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["sh", "-c", "roledesk db upgrade && exec roledesk serve --host 0.0.0.0"]
