#!/bin/bash
# Boot script of a spacelift-launcher host (EC2 user data of the CloudFormation template, the Terraform
# module and the Packer AMI). Settings come as shell variables set before this text (the templates
# write them); docs/deploy/boot-script.md lists them. Runs as root, once, at first boot.
#
# Order: log, instance metadata, CA certificates, proxy, credentials, launcher binary (verified before
# it is ever executed), user, launcher environment, custom user data, systemd unit, start.
# Any failure is logged with its line; the host powers off when POWER_OFF_ON_ERROR is true.
set -Eeuo pipefail
umask 077
PATH="${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"

: "${BINARIES_BUCKET:=}" "${DOWNLOADS_URL:=}" "${RELEASE_PUBLIC_KEY:=}" "${SECRET_NAME:=}"
: "${CUSTOM_USER_DATA_SECRET_NAME:=}" "${ADDITIONAL_ROOT_CAS_SECRET_NAME:=}"
: "${HTTP_PROXY_CONFIG:=}" "${HTTPS_PROXY_CONFIG:=}" "${NO_PROXY_CONFIG:=}"
: "${RUN_LAUNCHER_AS_SPACELIFT_USER:=true}" "${POWER_OFF_ON_ERROR:=true}" "${LAUNCHER_CONFIGURATION:=}"
: "${IMDS_ENDPOINT:=http://169.254.169.254}" "${S3_ENDPOINT_URL:=}" "${SECRETS_MANAGER_ENDPOINT_URL:=}"
: "${BOOT_LOG:=/var/log/spacelift-boot.log}"

CONF_DIR=/etc/spacelift
LAUNCHER=/usr/local/bin/spacelift-launcher
UNIT=/etc/systemd/system/spacelift-launcher.service
SPACELIFT_UID=1983

mkdir -p "$(dirname "$BOOT_LOG")"
exec > >(tee -a "$BOOT_LOG") 2>&1
log() { printf '%s spacelift-boot: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

fail() {
  log "FAILED: $*"
  if [ "$POWER_OFF_ON_ERROR" = true ]; then
    log "POWER_OFF_ON_ERROR is true: powering off so the Auto Scaling group replaces this instance"
    systemctl poweroff || true
  else
    log "POWER_OFF_ON_ERROR is false: leaving the instance up for inspection; see $BOOT_LOG"
  fi
  exit 1
}
trap 'fail "line $LINENO: \"$BASH_COMMAND\" exited with $?"' ERR

is_true() { case "$1" in true | True | TRUE | 1 | yes) return 0 ;; false | False | FALSE | 0 | no | "") return 1 ;; *) fail "$2 must be true or false, not $1" ;; esac; }
is_true "$POWER_OFF_ON_ERROR" POWER_OFF_ON_ERROR && POWER_OFF_ON_ERROR=true || POWER_OFF_ON_ERROR=false
for tool in aws curl jq sha256sum base64 systemctl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed; the AMI needs it (see docs/deploy/boot-script.md)"
done

# ---- instance metadata (IMDSv2: a session token first; the launch template requires it) ----
imds_token=$(curl -fsS --retry 5 --retry-connrefused -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS_ENDPOINT/latest/api/token") ||
  fail "no IMDSv2 token from $IMDS_ENDPOINT"
imds() { curl -fsS --retry 3 -H "X-aws-ec2-metadata-token: $imds_token" "$IMDS_ENDPOINT/latest/meta-data/$1"; }
instance_id=$(imds instance-id) || fail "instance metadata: no instance-id"
ami_id=$(imds ami-id) || fail "instance metadata: no ami-id"
# The Auto Scaling group tags its instances; the launch template makes tags readable from IMDS.
asg_id=$(imds "tags/instance/aws:autoscaling:groupName" 2>/dev/null) || asg_id=""
region="${AWS_REGION:-}"
[ -n "$region" ] || region=$(imds placement/region) || fail "instance metadata: no region"
export AWS_DEFAULT_REGION="$region"
log "instance $instance_id (AMI $ami_id, group ${asg_id:-none}, region $AWS_DEFAULT_REGION)"

# A secret's value goes to stdout only (callers capture it); never onto a command line or into the log.
secret() {
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text \
    ${SECRETS_MANAGER_ENDPOINT_URL:+--endpoint-url "$SECRETS_MANAGER_ENDPOINT_URL"}
}

# ---- extra CA certificates: base64 of {"caCertificates": [base64 PEM, ...]} ----
docker_restart=false
if [ -n "$ADDITIONAL_ROOT_CAS_SECRET_NAME" ]; then
  if [ -d /etc/pki/ca-trust/source/anchors ]; then ca_dir=/etc/pki/ca-trust/source/anchors; else ca_dir=/usr/local/share/ca-certificates; fi
  cas=$(secret "$ADDITIONAL_ROOT_CAS_SECRET_NAME") || fail "could not read the secret $ADDITIONAL_ROOT_CAS_SECRET_NAME"
  cas=$(printf '%s' "$cas" | base64 -d | jq -r '.caCertificates | if type == "array" then .[] else error("no array") end') ||
    fail "$ADDITIONAL_ROOT_CAS_SECRET_NAME must hold base64 of {\"caCertificates\": [\"<base64 PEM>\", ...]}"
  n=0
  for ca in $cas; do
    n=$((n + 1))
    pem=$(printf '%s' "$ca" | base64 -d) || fail "CA certificate $n is not base64"
    case "$pem" in *"-----BEGIN CERTIFICATE-----"*) ;; *) fail "CA certificate $n is not a PEM certificate" ;; esac
    install -D -m 0644 /dev/null "$ca_dir/spacelift-additional-$n.crt"
    printf '%s\n' "$pem" >"$ca_dir/spacelift-additional-$n.crt"
  done
  # The trust store is for every user: written with the usual modes, not this script's umask.
  if command -v update-ca-trust >/dev/null; then (umask 022 && update-ca-trust extract); else (umask 022 && update-ca-certificates); fi
  log "added $n CA certificates to the system trust store"
  docker_restart=true
fi

# ---- proxy: for this script, the launcher, its runs and the Docker daemon ----
proxy_vars=()
add_proxy() {
  [ -n "$2" ] || return 0
  case "$2" in *[[:space:]\"\\\$\`]*) fail "$1 must not contain spaces, quotes, \\, \$ or backquotes" ;; esac
  export "$1=$2" "${1,,}=$2"
  proxy_vars+=("$1" "${1,,}")
}
add_proxy HTTP_PROXY "$HTTP_PROXY_CONFIG"
add_proxy HTTPS_PROXY "$HTTPS_PROXY_CONFIG"
add_proxy NO_PROXY "$NO_PROXY_CONFIG"
if [ ${#proxy_vars[@]} -gt 0 ]; then
  install -d -m 0755 /etc/systemd/system/docker.service.d
  {
    echo "[Service]"
    for v in "${proxy_vars[@]}"; do printf 'Environment="%s=%s"\n' "$v" "${!v}"; done
  } >/etc/systemd/system/docker.service.d/http-proxy.conf
  chmod 0644 /etc/systemd/system/docker.service.d/http-proxy.conf
  log "proxy configured: ${proxy_vars[*]}"
  docker_restart=true
fi
if [ "$docker_restart" = true ]; then
  systemctl daemon-reload
  systemctl restart docker.service
fi

# ---- credentials: the pool token and key from the secret, into two root-only files ----
[ -n "$SECRET_NAME" ] || fail "SECRET_NAME is empty; give the Secrets Manager secret holding SPACELIFT_TOKEN and SPACELIFT_POOL_PRIVATE_KEY"
creds=$(secret "$SECRET_NAME") || fail "could not read the secret $SECRET_NAME from Secrets Manager"
token=$(printf '%s' "$creds" | jq -r '.SPACELIFT_TOKEN // empty') || fail "the secret $SECRET_NAME is not a JSON object of keys and values"
key=$(printf '%s' "$creds" | jq -r '.SPACELIFT_POOL_PRIVATE_KEY // empty')
unset creds
[ -n "$token" ] || fail "the secret $SECRET_NAME has no SPACELIFT_TOKEN key"
[ -n "$key" ] || fail "the secret $SECRET_NAME has no SPACELIFT_POOL_PRIVATE_KEY key"
# As they are (the key as base64 or the PEM itself): the unit hands them to the launcher as systemd
# credentials, read through SPACELIFT_TOKEN_FILE and SPACELIFT_POOL_PRIVATE_KEY_FILE.
install -d -m 0700 -o root -g root "$CONF_DIR"
printf '%s\n' "$token" >"$CONF_DIR/token"
printf '%s\n' "$key" >"$CONF_DIR/pool-private-key"
chmod 0600 "$CONF_DIR/token" "$CONF_DIR/pool-private-key"
unset token key
log "credentials from $SECRET_NAME written to $CONF_DIR/token and $CONF_DIR/pool-private-key (root, 0600)"

# ---- the launcher binary: downloaded, checked against SHA256SUMS (and its signature), then installed ----
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) fail "unsupported architecture $(uname -m); launchers exist for x86_64 and aarch64" ;;
esac
binary="spacelift-launcher-$arch"
work=$(mktemp -d)
fetch() {
  if [ -n "$BINARIES_BUCKET" ]; then
    local url="s3://${BINARIES_BUCKET#s3://}"
    aws s3 cp --no-progress ${S3_ENDPOINT_URL:+--endpoint-url "$S3_ENDPOINT_URL"} "${url%/}/$1" "$work/$1" >/dev/null
  else
    curl -fsS --retry 5 --proto '=https,http' -o "$work/$1" "${DOWNLOADS_URL%/}/$1"
  fi
}
if [ -n "$BINARIES_BUCKET" ] || [ -n "$DOWNLOADS_URL" ]; then
  from="${BINARIES_BUCKET:+s3://${BINARIES_BUCKET#s3://}}${DOWNLOADS_URL}"
  fetch SHA256SUMS || fail "could not download SHA256SUMS from $from"
  if [ -n "$RELEASE_PUBLIC_KEY" ]; then
    fetch SHA256SUMS.asc || fail "RELEASE_PUBLIC_KEY is set but $from has no SHA256SUMS.asc"
    printf '%s\n' "$RELEASE_PUBLIC_KEY" | gpg --batch --quiet --dearmor >"$work/release-key.gpg" || fail "RELEASE_PUBLIC_KEY is not an armored OpenPGP public key"
    gpgv --keyring "$work/release-key.gpg" "$work/SHA256SUMS.asc" "$work/SHA256SUMS" || fail "the signature on SHA256SUMS does not verify with RELEASE_PUBLIC_KEY"
    log "SHA256SUMS signature verified"
  fi
  fetch "$binary" || fail "could not download $binary from $from"
  want=$(awk -v f="$binary" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")
  [[ "$want" =~ ^[0-9a-f]{64}$ ]] || fail "SHA256SUMS has no single line for $binary"
  got=$(sha256sum "$work/$binary" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$binary does not match SHA256SUMS (sha256 $got, expected $want); not installed"
  install -m 0755 -o root -g root "$work/$binary" "$LAUNCHER"
  log "installed $binary (sha256 $got) from $from"
elif [ -x "$LAUNCHER" ]; then
  log "no BINARIES_BUCKET or DOWNLOADS_URL: using the launcher baked into the image"
else
  fail "no launcher: set BINARIES_BUCKET or DOWNLOADS_URL, or bake $LAUNCHER into the image"
fi
rm -rf "$work"
log "launcher: $("$LAUNCHER" version | head -n 1)"

# ---- the user the launcher runs as ----
if is_true "$RUN_LAUNCHER_AS_SPACELIFT_USER" RUN_LAUNCHER_AS_SPACELIFT_USER; then
  getent group docker >/dev/null || fail "there is no docker group; install Docker first"
  if ! id spacelift >/dev/null 2>&1; then
    useradd --uid "$SPACELIFT_UID" --user-group --create-home --shell /bin/bash spacelift
  fi
  [ "$(id -u spacelift)" = "$SPACELIFT_UID" ] || fail "user spacelift exists with UID $(id -u spacelift), not $SPACELIFT_UID"
  usermod -aG docker spacelift
  run_user=spacelift
else
  run_user=root
fi
log "the launcher runs as $run_user"

# ---- the launcher's environment ----
scratch=/opt/spacelift
install -d -m 0700 -o "$run_user" -g "$run_user" "$scratch"
whitelist=$(IFS=,; echo "${proxy_vars[*]}")
{
  echo "SPACELIFT_LAUNCHER_SCRATCH_DIR=$scratch"
  echo "SPACELIFT_INSTANCE_METADATA_ENDPOINT=$IMDS_ENDPOINT"
  echo "SPACELIFT_METADATA_instance_id=$instance_id"
  echo "SPACELIFT_METADATA_ami_id=$ami_id"
  [ -z "$asg_id" ] || echo "SPACELIFT_METADATA_asg_id=$asg_id"
  for v in "${proxy_vars[@]}"; do echo "$v=${!v}"; done
  [ -z "$whitelist" ] || echo "SPACELIFT_WHITELIST_ENVS=$whitelist"
  # `export NAME=value` lines (the Terraform module's `configuration`): the same without `export`.
  printf '%s\n' "$LAUNCHER_CONFIGURATION" | sed -n 's/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}\([A-Za-z_][A-Za-z0-9_]*=.*\)$/\2/p'
} >"$CONF_DIR/launcher.env"
chmod 0600 "$CONF_DIR/launcher.env"

# ---- custom user data: a shell script kept in Secrets Manager; it may append to launcher.env ----
if [ -n "$CUSTOM_USER_DATA_SECRET_NAME" ]; then
  secret "$CUSTOM_USER_DATA_SECRET_NAME" >"$CONF_DIR/custom-user-data.sh" || fail "could not read the secret $CUSTOM_USER_DATA_SECRET_NAME"
  chmod 0700 "$CONF_DIR/custom-user-data.sh"
  log "running the custom user data from $CUSTOM_USER_DATA_SECRET_NAME"
  LAUNCHER_ENV_FILE="$CONF_DIR/launcher.env" bash "$CONF_DIR/custom-user-data.sh" || fail "the custom user data from $CUSTOM_USER_DATA_SECRET_NAME exited with $?"
fi

# ---- the systemd unit (build/systemd/spacelift-launcher.service) and this host's drop-in ----
cat >"$UNIT" <<'UNIT'
# spacelift-launcher as a systemd service. The boot script (build/user-data/) installs this file and
# a drop-in (spacelift-launcher.service.d/10-boot.conf) with the user and the power-off policy; by hand:
# copy it to /etc/systemd/system/, write the files it names, `systemctl enable --now`.
# See docs/deploy/systemd.md.
[Unit]
Description=Spacelift launcher (private worker pool)
Wants=network-online.target
After=network-online.target docker.service
Requires=docker.service
# At most 5 starts in 30 minutes: a launcher that keeps failing (expired pool certificate, bad
# configuration) is given up on instead of hammering the mothership; the unit then fails, which is
# what OnFailure= (power-off, set by the boot script) reacts to.
StartLimitIntervalSec=30min
StartLimitBurst=5

[Service]
Type=exec
# Configuration (no secrets) from a root-only file. The token and key stay in root's 0600 files: systemd
# copies them into the service's private credentials directory (%d, readable only by the service's
# user, systemd 248 or later) and the launcher reads them there, never from its environment.
EnvironmentFile=/etc/spacelift/launcher.env
LoadCredential=token:/etc/spacelift/token
LoadCredential=pool-private-key:/etc/spacelift/pool-private-key
Environment=SPACELIFT_TOKEN_FILE=%d/token SPACELIFT_POOL_PRIVATE_KEY_FILE=%d/pool-private-key
ExecStart=/usr/local/bin/spacelift-launcher
# SIGTERM drains: the launcher takes no new run, lets the current one finish (at most
# SPACELIFT_LAUNCHER_RUN_TIMEOUT, 70m by default) and leaves. The stop timeout is that plus 5 minutes
# for the goodbye and log upload; raise both together. Only the launcher gets the signal (its run
# containers belong to dockerd, and it stops them itself).
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=75min
# Exit 0 is a clean leave (drained, cycled, spot notice): not restarted. Exit 77 means the mothership
# refuses the pool's credentials (pool reset or deleted): a restart cannot help, so the unit fails at
# once. Any other failure is restarted after 30 s, within the start limit above.
Restart=on-failure
RestartSec=30s
RestartPreventExitStatus=77
UMask=0077
NoNewPrivileges=yes
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
install -d -m 0755 "$UNIT.d"
{
  echo "[Unit]"
  if [ "$POWER_OFF_ON_ERROR" = true ]; then
    echo "OnFailure=poweroff.target"
    echo "OnFailureJobMode=replace-irreversibly"
  fi
  echo "[Service]"
  echo "User=$run_user"
  echo "Group=$run_user"
  [ "$run_user" = root ] || echo "SupplementaryGroups=docker"
} >"$UNIT.d/10-boot.conf"
chmod 0644 "$UNIT" "$UNIT.d/10-boot.conf"
systemctl daemon-reload
systemctl enable --now spacelift-launcher.service
log "spacelift-launcher.service started"
