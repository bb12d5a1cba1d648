"""dockerma benchmarks: dockerma against the docker commands a user would type.

Sections (see benchmarks/README.md):
  build     dockerma build vs raw `docker build` ×3 (sequential, parallel), classic engine
  push      dockerma push vs raw `docker push` ×3 + `docker manifest …`, classic engine
  buildx    dockerma build --push vs `docker buildx build --platform … --push` and the designs
            (one bake, a build per arch), BuildKit engines (docker 26, docker 28.5)
  micro     parse+render of a 5,000-line Dockerfile, `dockerma --help`, import time
  overhead  dockerma's own (non-docker) time per run, 1/2/3 archs
  buildah   three-arch build + push: `dockerma build --push` vs the alternatives (raw `docker build`
            ×3 & + `docker push` ×3 & + `docker manifest …`; `buildah build --jobs 3 --manifest` +
            `buildah manifest push`), and dockerma's two-command form; alias: buildpush
  growth    dockerma's wall time, own time and peak memory as platforms and Dockerfile lines grow

Needs the test bed (scripts/testbed; addresses in /var/lib/dockerma-testbed/env).
Tables go to stdout, progress to stderr.
"""
