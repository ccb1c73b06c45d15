# A Spacelift private worker pool on EC2: an Auto Scaling group of launcher hosts booted by the
# same boot script as the CloudFormation template (build/user-data/spacelift-boot.sh).

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name        = "spacelift-${lower(var.worker_pool_id)}"
  secret_name = var.secret_name != "" ? var.secret_name : aws_secretsmanager_secret.credentials[0].name
  sc          = var.selfhosted_configuration
  # The documented s3_uri names the launcher object; the boot script wants the bucket (and prefix).
  binaries = trimsuffix(trimsuffix(local.sc.s3_uri, "/spacelift-launcher"), "/")
  bucket   = split("/", trimprefix(local.binaries, "s3://"))[0]
  settings = {
    BINARIES_BUCKET                 = local.binaries
    DOWNLOADS_URL                   = local.sc.downloads_url
    RELEASE_PUBLIC_KEY              = local.sc.release_public_key
    SECRET_NAME                     = local.secret_name
    CUSTOM_USER_DATA_SECRET_NAME    = local.sc.custom_user_data_secret_name
    ADDITIONAL_ROOT_CAS_SECRET_NAME = local.sc.additional_root_cas_secret_name
    HTTP_PROXY_CONFIG               = local.sc.http_proxy_config
    HTTPS_PROXY_CONFIG              = local.sc.https_proxy_config
    NO_PROXY_CONFIG                 = local.sc.no_proxy_config
    RUN_LAUNCHER_AS_SPACELIFT_USER  = tostring(local.sc.run_launcher_as_spacelift_user)
    POWER_OFF_ON_ERROR              = tostring(local.sc.power_off_on_error)
    LAUNCHER_CONFIGURATION          = var.configuration
  }
  # Each setting single-quoted for the shell, then the boot script as it is.
  user_data = join("", concat(
    ["#!/bin/bash\n"],
    [for k, v in local.settings : format("%s='%s'\n", k, replace(v, "'", "'\\''"))],
    [file("${path.module}/../../user-data/spacelift-boot.sh")],
  ))
  secret_arn_prefix = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret"
  managed_policies  = ["AutoScalingReadOnlyAccess", "CloudWatchAgentServerPolicy", "AmazonSSMManagedInstanceCore"]
}

resource "aws_secretsmanager_secret" "credentials" {
  count = var.secret_name == "" ? 1 : 0
  name  = "${local.name}-credentials"
}

resource "aws_secretsmanager_secret_version" "credentials" {
  count         = var.secret_name == "" ? 1 : 0
  secret_id     = aws_secretsmanager_secret.credentials[0].id
  secret_string = jsonencode(var.secure_env_vars)
}

resource "aws_iam_role" "worker" {
  count = var.instance_role_name == "" ? 1 : 0
  name  = local.name
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = var.instance_role_name == "" ? toset(local.managed_policies) : toset([])
  role       = aws_iam_role.worker[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_iam_role_policy" "boot" {
  count = var.instance_role_name == "" ? 1 : 0
  name  = "spacelift-worker-boot"
  role  = aws_iam_role.worker[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Effect = "Allow"
        Action = "secretsmanager:GetSecretValue"
        Resource = [for n in compact([local.secret_name, local.sc.custom_user_data_secret_name, local.sc.additional_root_cas_secret_name]) :
        "${local.secret_arn_prefix}:${n}-??????"]
      }],
      local.bucket == "" ? [] : [{ Effect = "Allow", Action = "s3:GetObject", Resource = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket}/*" }],
    )
  })
}

resource "aws_iam_instance_profile" "worker" {
  name = local.name
  role = var.instance_role_name != "" ? var.instance_role_name : aws_iam_role.worker[0].name
}

resource "aws_launch_template" "worker" {
  name_prefix   = "${local.name}-"
  image_id      = var.ami_id
  instance_type = var.ec2_instance_type
  user_data     = base64encode(local.user_data)

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }
  vpc_security_group_ids = var.security_groups

  # IMDSv2 only, one hop: run containers cannot reach the instance role's credentials; instance tags
  # in IMDS give the boot script the group's name.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  dynamic "instance_market_options" {
    for_each = var.instance_market_options == null ? [] : [var.instance_market_options]
    content {
      market_type = instance_market_options.value.market_type
      dynamic "spot_options" {
        for_each = instance_market_options.value.spot_options == null ? [] : [instance_market_options.value.spot_options]
        content {
          max_price                      = spot_options.value.max_price
          spot_instance_type             = spot_options.value.spot_instance_type
          instance_interruption_behavior = spot_options.value.instance_interruption_behavior
        }
      }
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = local.name, "spacelift:worker-pool" = var.worker_pool_id }
  }
}

resource "aws_autoscaling_group" "workers" {
  name                = local.name
  min_size            = var.min_size
  max_size            = var.max_size
  vpc_zone_identifier = var.vpc_subnets

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
  }
}
