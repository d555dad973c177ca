# conch on ECS Fargate: N identical tasks in the private subnets behind the
# load balancer. Every task serves HTTP and runs job runners; runners claim
# jobs with FOR UPDATE SKIP LOCKED, so any number share the one database.

locals {
  image      = "${coalesce(var.image_repository, try(aws_ecr_repository.conch[0].repository_url, null))}:${var.image_tag}"
  public_url = "https://${var.public_hostname}"

  # Non-secret configuration; empty values are left out so that conch's
  # own defaults apply.
  environment = {
    for k, v in merge({
      CONCH_LISTEN           = "0.0.0.0:8080"
      CONCH_PUBLIC_URL       = local.public_url
      CONCH_LOG_LEVEL        = var.log_level
      CONCH_HTTP_THREADS     = tostring(var.http_threads)
      CONCH_JOB_THREADS      = tostring(var.job_threads)
      CONCH_SLACK_CLIENT_ID  = var.slack_client_id
      CONCH_STRIPE_PRICE_PRO = var.stripe_price_pro
      # The load balancer rules below are repeated in conch itself, on
      # the client address the load balancer reports.
      CONCH_TRUSTED_PROXIES = local.vpc_cidr_block
      CONCH_ADMIN_ALLOW     = join(",", var.admin_cidr_blocks)
      # Only the collector sidecar, on the task's own localhost.
      CONCH_METRICS_ALLOW = "127.0.0.1/32,::1/128"
    }, var.extra_environment) : k => v if v != ""
  }

  container_environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]

  # Secrets Manager -> CONCH_<KEY>, resolved by ECS when a task starts.
  # `conch serve` gets every secret but the owner's database URL; the
  # containers that run `conch migrate` get that one too.
  migrate_only_secret_keys = ["database_migrate_url"]
  container_secrets = [
    for k in local.secret_keys : {
      name      = "CONCH_${upper(k)}"
      valueFrom = aws_secretsmanager_secret.conch[k].arn
    } if !contains(local.migrate_only_secret_keys, k)
  ]
  migrate_container_secrets = [
    for k in local.secret_keys : {
      name      = "CONCH_${upper(k)}"
      valueFrom = aws_secretsmanager_secret.conch[k].arn
    }
  ]

  # Each thread holds one connection; the LISTEN connection and a spare.
  connections_per_task = var.http_threads + var.job_threads + 2

  # What every conch container shares: image, user, configuration, a
  # read-only root, no capabilities, logs to CloudWatch.
  conch_container = {
    image                  = local.image
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    environment            = local.container_environment
    secrets                = local.container_secrets
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    ulimits                = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
  }
}

resource "aws_ecr_repository" "conch" {
  count = var.image_repository == null ? 1 : 0

  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.conch.arn
  }
}

resource "aws_ecr_lifecycle_policy" "conch" {
  count = var.image_repository == null ? 1 : 0

  repository = aws_ecr_repository.conch[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 50 images (enough to roll back)"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_cloudwatch_log_group" "conch" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_cluster" "conch" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# The service's task: `conch migrate` runs first in every task (like the
# systemd unit's ExecStartPre); `conch serve` starts only when it exited 0.
# Migrations take an advisory lock and are no-ops once applied, so tasks
# starting together are safe; a failed migration fails the task, and the
# deployment circuit breaker rolls the service back.
resource "aws_ecs_task_definition" "conch" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode(concat(
    [
      merge(local.conch_container, {
        name      = "migrate"
        essential = false
        command   = ["conch", "migrate"]
        secrets   = local.migrate_container_secrets
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.conch.name
            awslogs-region        = var.region
            awslogs-stream-prefix = "migrate"
          }
        }
      }),
      merge(local.conch_container, {
        name         = "conch"
        essential    = true
        command      = ["conch", "serve"]
        portMappings = [{ containerPort = 8080, protocol = "tcp" }]
        dependsOn    = [{ containerName = "migrate", condition = "SUCCESS" }]
        # Liveness: /livez never asks the database, so an outage does not
        # make ECS restart every task (the load balancer's readiness check
        # is /healthz). After SIGTERM conch drains (drain_seconds) well
        # within stopTimeout.
        healthCheck = {
          command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:8080/livez"]
          interval    = 15
          timeout     = 5
          retries     = 3
          startPeriod = 30
        }
        stopTimeout = 30
        # Non-blocking so that a slow CloudWatch never stalls request
        # threads on write(2); lines beyond the buffer are dropped.
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.conch.name
            awslogs-region        = var.region
            awslogs-stream-prefix = "conch"
            mode                  = "non-blocking"
            max-buffer-size       = "25m"
          }
        }
      }),
    ],
    var.enable_prometheus ? [local.adot_container] : [],
  ))
}

# A one-off task for `conch migrate` ahead of a deploy, and (with a command
# override) `conch rotate-keys`: deploy/ecs-run.sh migrate|rotate-keys runs
# it and waits for its exit status.
resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  container_definitions = jsonencode([
    merge(local.conch_container, {
      name      = "conch"
      essential = true
      command   = ["conch", "migrate"]
      secrets   = local.migrate_container_secrets
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.conch.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "oneoff"
        }
      }
    }),
  ])
}

resource "aws_ecs_service" "conch" {
  name                    = var.name
  cluster                 = aws_ecs_cluster.conch.id
  task_definition         = aws_ecs_task_definition.conch.arn
  desired_count           = var.min_count
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true

  # Rolling: start new tasks beside the old ones, move traffic when they
  # pass /healthz (readiness), stop the old ones; roll back on repeated
  # failure.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  wait_for_steady_state              = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.conch.arn
    container_name   = "conch"
    container_port   = 8080
  }

  lifecycle {
    # The autoscaler owns the count once the service exists.
    ignore_changes = [desired_count]

    # A deployment may run twice the desired tasks (maximum_percent 200).
    precondition {
      condition     = 2 * var.max_count * local.connections_per_task <= var.db_connection_budget
      error_message = "2 x max_count x (http_threads + job_threads + 2) exceeds db_connection_budget: lower them or use a larger database."
    }
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "conch" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.conch.name}/${aws_ecs_service.conch.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  service_namespace  = aws_appautoscaling_target.conch.service_namespace
  resource_id        = aws_appautoscaling_target.conch.resource_id
  scalable_dimension = aws_appautoscaling_target.conch.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
