# Inputs of the aws-workerpool module (docs/deploy/terraform.md). The names follow the
# terraform-aws-spacelift-workerpool-on-ec2 module's where they mean the same thing.

variable "worker_pool_id" {
  type        = string
  description = "The pool's id (mothership pool create); names the group, role and launch template."
}

variable "secure_env_vars" {
  type        = map(string)
  default     = {}
  sensitive   = true
  description = "SPACELIFT_TOKEN and SPACELIFT_POOL_PRIVATE_KEY (base64 of the key file): kept in a Secrets Manager secret this module makes. Leave empty and set secret_name to use your own secret."
}

variable "secret_name" {
  type        = string
  default     = ""
  description = "An existing Secrets Manager secret with SPACELIFT_TOKEN and SPACELIFT_POOL_PRIVATE_KEY, instead of secure_env_vars."
}

variable "configuration" {
  type        = string
  default     = ""
  description = "Extra launcher settings, one `export NAME=value` per line (e.g. SPACELIFT_LAUNCHER_RUN_TIMEOUT)."
}

variable "min_size" {
  type    = number
  default = 1
}

variable "max_size" {
  type    = number
  default = 10
}

variable "ec2_instance_type" {
  type    = string
  default = "t3.medium"
}

variable "ami_id" {
  type        = string
  description = "The workers' AMI: the one build/packer bakes, or any image with Docker, the AWS CLI, curl and jq."
}

variable "security_groups" {
  type = list(string)
}

variable "vpc_subnets" {
  type = list(string)
}

variable "instance_role_name" {
  type        = string
  default     = ""
  description = "An existing instance role; empty makes one with AutoScalingReadOnlyAccess, CloudWatchAgentServerPolicy and AmazonSSMManagedInstanceCore."
}

variable "selfhosted_configuration" {
  type = object({
    s3_uri                          = optional(string, "")
    downloads_url                   = optional(string, "")
    release_public_key              = optional(string, "")
    http_proxy_config               = optional(string, "")
    https_proxy_config              = optional(string, "")
    no_proxy_config                 = optional(string, "")
    additional_root_cas_secret_name = optional(string, "")
    custom_user_data_secret_name    = optional(string, "")
    run_launcher_as_spacelift_user  = optional(bool, true)
    power_off_on_error              = optional(bool, true)
  })
  default     = {}
  description = "Where the launcher comes from (s3_uri of the downloads bucket, or a mothership's downloads_url), the release's OpenPGP public key, proxies, extra CAs, custom user data, the user and the power-off policy."
}

variable "instance_market_options" {
  type = object({
    market_type = string
    spot_options = optional(object({
      max_price                      = optional(string)
      spot_instance_type             = optional(string)
      instance_interruption_behavior = optional(string)
    }))
  })
  default     = null
  description = "EC2 market options, e.g. { market_type = \"spot\" } (not for production: a spot worker gets 2 minutes' notice)."
}
