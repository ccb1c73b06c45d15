# A pool from a self-hosted mothership's release in its downloads bucket (docs/deploy/terraform.md).

variable "worker_pool_config" {
  type      = string
  sensitive = true
}

variable "worker_pool_private_key" {
  type      = string
  sensitive = true
}

variable "worker_pool_id" {
  type = string
}

variable "worker_pool_security_groups" {
  type = list(string)
}

variable "worker_pool_subnets" {
  type = list(string)
}

variable "ami_id" {
  type = string
}

provider "aws" {
  region = "eu-west-1"
}

module "my_workerpool" {
  source = "../../aws-workerpool"

  secure_env_vars = {
    SPACELIFT_TOKEN            = var.worker_pool_config
    SPACELIFT_POOL_PRIVATE_KEY = var.worker_pool_private_key
  }

  configuration = <<EOF
    export SPACELIFT_LAUNCHER_RUN_TIMEOUT=120m
  EOF

  min_size        = 1
  max_size        = 10
  worker_pool_id  = var.worker_pool_id
  security_groups = var.worker_pool_security_groups
  vpc_subnets     = var.worker_pool_subnets
  ami_id          = var.ami_id
  selfhosted_configuration = {
    s3_uri = "s3://spacelift-binaries-123ab/spacelift-launcher"
  }

  # Spot workers: cheaper, interrupted at 2 minutes' notice (the launcher drains on the notice).
  # instance_market_options = { market_type = "spot" }
  # ec2_instance_type       = "t3.medium"
}
