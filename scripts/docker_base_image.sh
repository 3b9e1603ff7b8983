#!/usr/bin/env bash
# Builds a local Docker base image of Debian bookworm with Debian's python3.11, made with
# debootstrap instead of pulled from a registry, and imports it as $1 (default
# demix-base:bookworm). The host's CA certificates are copied in, so that apt and pip inside
# `docker build` work behind a TLS-intercepting proxy. Needs root, debootstrap and a running
# Docker daemon:  apt-get install -y docker.io debootstrap && (dockerd &)
#   bash scripts/docker_base_image.sh
#   docker build --build-arg BASE_IMAGE=demix-base:bookworm -t demix .
set -euo pipefail
tag=${1:-demix-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/demix-base.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT

debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
  bookworm "$root" "$mirror"
cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
chroot "$root" update-ca-certificates >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import - "$tag"
echo "docker_base_image: built $tag"
