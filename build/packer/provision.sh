#!/bin/bash
# Packer's provisioning step (spacelift-worker.pkr.hcl): makes the image a spacelift-launcher host.
# Installs what the boot script needs (Docker, the AWS CLI, curl, jq) when it is missing, then the
# launcher from $STAGING after checking it against SHA256SUMS, the boot script and the systemd unit.
# Runs as root. Every step says what failed; nothing is installed from a file that does not verify.
set -Eeuo pipefail
trap 'echo "provision: line $LINENO: \"$BASH_COMMAND\" exited with $?" >&2' ERR

STAGING="${STAGING:-/tmp/spacelift-packer}"
LAUNCHER_NAME="${LAUNCHER_NAME:-spacelift-launcher-$(uname -m | sed 's/arm64/aarch64/')}"
fail() { echo "provision: $*" >&2; exit 1; }

missing=()
for tool in docker aws curl jq gpg sha256sum; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision: installing what is missing: ${missing[*]}"
  if command -v dnf >/dev/null; then
    dnf install -y docker awscli-2 jq curl-minimal gnupg2-minimal
  elif command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io awscli jq curl gpg
  else
    fail "no dnf or apt-get to install ${missing[*]}; use an Amazon Linux, Debian or Ubuntu base image"
  fi
fi
getent group docker >/dev/null || fail "Docker did not create the docker group"

# The launcher: only a file whose SHA256SUMS line matches is installed.
for f in "$LAUNCHER_NAME" SHA256SUMS spacelift-boot.sh spacelift-launcher.service; do
  [ -f "$STAGING/$f" ] || fail "$STAGING/$f is missing; the file provisioner uploads it from the release and build/"
done
want=$(awk -v f="$LAUNCHER_NAME" '$2 == f || $2 == "*" f { print $1 }' "$STAGING/SHA256SUMS")
[[ "$want" =~ ^[0-9a-f]{64}$ ]] || fail "SHA256SUMS has no single line for $LAUNCHER_NAME"
got=$(sha256sum "$STAGING/$LAUNCHER_NAME" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "$LAUNCHER_NAME does not match SHA256SUMS (sha256 $got, expected $want); not installed"
install -m 0755 -o root -g root "$STAGING/$LAUNCHER_NAME" /usr/local/bin/spacelift-launcher
echo "provision: installed $LAUNCHER_NAME (sha256 $got): $(/usr/local/bin/spacelift-launcher version | head -n 1)"

# The boot script, for instances whose user data runs it from the image, and the unit.
install -D -m 0755 -o root -g root "$STAGING/spacelift-boot.sh" /usr/local/lib/spacelift/spacelift-boot.sh
install -D -m 0644 -o root -g root "$STAGING/spacelift-launcher.service" /etc/systemd/system/spacelift-launcher.service
if command -v systemctl >/dev/null; then systemctl enable docker.service; fi
rm -rf "$STAGING"
echo "provision: done"
