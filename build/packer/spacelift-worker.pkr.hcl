# An AMI for spacelift-launcher hosts: Docker, the AWS CLI, curl and jq, the launcher from a release
# (checked against its SHA256SUMS), the boot script and the systemd unit. Instances of it still boot
# with the user data of the CloudFormation template or the Terraform module; with no bucket or
# downloads URL given, the boot script uses the launcher baked here. See docs/deploy/packer.md.
#
#   make release && packer init build/packer && packer build -var release_dir=dist/release build/packer

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "arch" {
  type        = string
  default     = "x86_64"
  description = "x86_64 or arm64 (the launcher spacelift-launcher-aarch64 is taken for arm64)."
}

variable "instance_type" {
  type    = string
  default = "t3.medium"
}

variable "release_dir" {
  type        = string
  default     = "dist/release"
  description = "The directory make release wrote: the launchers and SHA256SUMS."
}

locals {
  launcher  = var.arch == "arm64" ? "spacelift-launcher-aarch64" : "spacelift-launcher-x86_64"
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  ami_name      = "spacelift-worker-${var.arch}-${local.timestamp}"
  ssh_username  = "ec2-user"
  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-*-${var.arch}"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["amazon"]
    most_recent = true
  }
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"
}

build {
  sources = ["source.amazon-ebs.worker"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/spacelift-packer"]
  }

  provisioner "file" {
    sources = [
      "${var.release_dir}/${local.launcher}",
      "${var.release_dir}/SHA256SUMS",
      "${path.root}/../user-data/spacelift-boot.sh",
      "${path.root}/../systemd/spacelift-launcher.service",
    ]
    destination = "/tmp/spacelift-packer/"
  }

  provisioner "shell" {
    script          = "${path.root}/provision.sh"
    execute_command = "sudo env {{ .Vars }} bash '{{ .Path }}'"
    environment_vars = [
      "STAGING=/tmp/spacelift-packer",
      "LAUNCHER_NAME=${local.launcher}",
    ]
  }
}
