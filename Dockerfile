# One image for web, worker, consumer and the one-shot init (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# mysqlclient builds against the MariaDB client library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

# .dockerignore keeps .env files out: the container's environment alone configures it.
COPY . .
RUN useradd --create-home cinegraph && mkdir -p var/models && chown -R cinegraph var
# Static files are served by whitenoise; collecting them needs no database.
RUN DJANGO_SECRET_KEY=build-only python manage.py collectstatic --noinput
USER cinegraph

EXPOSE 8000
CMD ["granian", "--interface", "wsgi", "webapp.wsgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "3", "--blocking-threads", "4", "--respawn-failed-workers"]
