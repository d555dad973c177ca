output "public_url" {
  description = "public_url conch is configured with; point Slack's redirect URL, slash commands, interactivity and events, and Stripe's webhook here."
  value       = local.public_url
}

output "load_balancer_dns_name" {
  description = "Point public_hostname here (CNAME or alias) unless route53_zone_id was given."
  value       = aws_lb.conch.dns_name
}

output "image_repository_url" {
  description = "Push images here, tagged with image_tag."
  value       = try(aws_ecr_repository.conch[0].repository_url, var.image_repository)
}

output "cluster_name" {
  value = aws_ecs_cluster.conch.name
}

output "service_name" {
  value = aws_ecs_service.conch.name
}

output "migrate_task_definition" {
  description = "Family of the one-off task (conch migrate; override the command for rotate-keys)."
  value       = aws_ecs_task_definition.migrate.family
}

output "run_task_network" {
  description = "--network-configuration for aws ecs run-task."
  value = jsonencode({
    awsvpcConfiguration = {
      subnets        = local.private_subnet_ids
      securityGroups = [aws_security_group.app.id]
      assignPublicIp = "DISABLED"
    }
  })
}

output "log_group" {
  value = aws_cloudwatch_log_group.conch.name
}

output "secret_ids" {
  description = "Secrets Manager secrets to fill before the first deploy, by conch key."
  value       = { for k, s in aws_secretsmanager_secret.conch : k => s.name }
}

output "db_endpoint" {
  description = "host:port of PostgreSQL (private)."
  value       = aws_db_instance.conch.endpoint
}

output "db_address" {
  value = aws_db_instance.conch.address
}

output "db_master_secret_arn" {
  description = "RDS-managed secret with the conch_admin password (bootstrap only; conch never uses it)."
  value       = aws_db_instance.conch.master_user_secret[0].secret_arn
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}

output "prometheus_query_url" {
  description = "Query endpoint of the Prometheus workspace (for Grafana), when enable_prometheus."
  value       = var.enable_prometheus ? aws_prometheus_workspace.conch[0].prometheus_endpoint : null
}
