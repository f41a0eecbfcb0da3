# arca in a container: one stateless process; storage is a volume or an S3 bucket.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install '.[s3]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/arca --create-home arca
USER arca
WORKDIR /var/lib/arca
ENV ARCA_SERVER_HOST=0.0.0.0 \
    ARCA_SERVER_PORT=5000 \
    ARCA_STORAGE_FILESYSTEM_ROOT=/var/lib/arca/data
EXPOSE 5000
VOLUME ["/var/lib/arca/data"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["arca"]
CMD ["serve"]
