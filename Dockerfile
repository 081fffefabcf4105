# pidone in its own virtual environment, over a demo workload.
#   docker build -t pidone .
#   docker run --rm -p 10101:10101 pidone          # the zombie factory under pidone
#   docker run --rm pidone your-command args...    # anything else under pidone
# The venv keeps pidone's packages (its `app`, starlette, uvicorn) out of the
# workload's site-packages; only the `pidone` script is put on PATH.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY app/ app/
COPY bin/ bin/
# pip drops the -I of bin/pidone's #! line (isolated from the workload's PYTHONPATH, PYTHONHOME,
# sitecustomize...) when it writes the venv's interpreter in: sed puts it back.
# /wheels holds pidone and its dependencies, all pure Python: a wheelhouse that installs
# offline into any image with Python 3.11+ (docker build --target build; see README, "A Python image").
# constraints.txt pins them at the versions the tests ran with, as in `make venv`.
RUN python -m pip wheel --no-cache-dir -c constraints.txt --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/pidone \
 && python -m pip --python /opt/pidone/bin/python install --no-cache-dir --no-index \
        --find-links /wheels /wheels/pidone-*.whl \
 && sed -i '1s/^\(#!.*python[0-9.]*\)$/\1 -I/' /opt/pidone/bin/pidone

# /opt/pidone self-contained: its own Python and C library, from the same wheels, for images
# without Python or a shell (docker build --target bundle; see docs/images.md).
FROM ${PYTHON_IMAGE} AS bundle-build
# patchelf only rewrites the bundle's library paths at build time: the release's own is fine.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends patchelf \
 && rm -rf /var/lib/apt/lists/*
COPY constraints.txt /src/
COPY bundle/ /src/bundle/
COPY bin/ /src/bin/
COPY --from=build /wheels /wheels
RUN python3 /src/bundle/build.py --wheels /wheels /opt/pidone

# Nothing but the bundle: COPY --from=pidone-bundle /opt/pidone /opt/pidone
FROM scratch AS bundle
COPY --from=bundle-build /opt/pidone /opt/pidone
ENTRYPOINT ["/opt/pidone/bin/pidone"]

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/pidone /opt/pidone
COPY examples/zombie-factory.py /usr/local/share/pidone/zombie-factory.py
RUN ln -s /opt/pidone/bin/pidone /usr/local/bin/pidone \
 && groupadd --system --gid 10101 pidone \
 && useradd --system --uid 10101 --gid pidone --no-create-home --shell /usr/sbin/nologin pidone
USER 10101:10101
EXPOSE 10101
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["pidone", "health", "--timeout", "3"]
ENTRYPOINT ["pidone", "--"]
CMD ["python", "/usr/local/share/pidone/zombie-factory.py", "--hup-init-every", "30"]
