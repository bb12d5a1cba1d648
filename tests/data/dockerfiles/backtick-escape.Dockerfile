# escape=`
# dockerma archs:amd64,arm64
FROM `
    localhost:5000/tools/builder:2 `
    AS builder
RUN make `
    all
FROM busybox:1.36
COPY --from=builder C:\out\app /app
RUN echo C:\path\not\a\continuation\
CMD ["/app"]
