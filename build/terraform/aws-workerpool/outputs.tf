output "autoscaling_group_name" {
  value = aws_autoscaling_group.workers.name
}

output "instance_role_name" {
  value = var.instance_role_name != "" ? var.instance_role_name : aws_iam_role.worker[0].name
}

output "secret_name" {
  value = local.secret_name
}
