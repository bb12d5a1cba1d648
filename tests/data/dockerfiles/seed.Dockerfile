# dockerma archs:arm,amd64,arm64:
FROM localhost:5000/busybox:1
RUN uname -m > /arch
CMD ["cat", "/arch"]
