# Alarms go to one SNS topic. CloudWatch watches what AWS sees (the load
# balancer, the tasks, the database, error log lines); Prometheus rules
# (deploy/prometheus/alerts.yml, loaded into Amazon Managed Service for
# Prometheus below) watch what conch reports at /metrics. docs/operations.md
# says what each alarm means and what to do.

resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alb_dimensions = { LoadBalancer = aws_lb.conch.arn_suffix }
  tg_dimensions  = { LoadBalancer = aws_lb.conch.arn_suffix, TargetGroup = aws_lb_target_group.conch.arn_suffix }
  db_dimensions  = { DBInstanceIdentifier = aws_db_instance.conch.identifier }
  alarm_actions  = [aws_sns_topic.alarms.arn]
}

# --- load balancer ---------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "target_5xx_rate" {
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than 2% of requests answered 5xx by conch for 10 minutes. See docs/operations.md#5xx-rate."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 2
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id = "rate"
    # No 5xx datapoint means none happened; under 50 requests a percentage
    # says little.
    expression  = "IF(requests >= 50, 100 * FILL(errors, 0) / requests, 0)"
    label       = "5xx percent"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = local.tg_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = local.tg_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "elb_5xx" {
  alarm_name          = "${var.name}-lb-5xx"
  alarm_description   = "The load balancer itself answered 502/503/504 (no healthy target, connection refused or timed out). See docs/operations.md#load-balancer-5xx."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = local.alb_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 10
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  alarm_name          = "${var.name}-unhealthy-hosts"
  alarm_description   = "A conch task fails /healthz (it cannot reach the database). See docs/operations.md#healthz-failing."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = local.tg_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "no_healthy_hosts" {
  alarm_name          = "${var.name}-no-healthy-hosts"
  alarm_description   = "No conch task passes /healthz: Slack commands and webhooks are failing. See docs/operations.md#healthz-failing."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = local.tg_dimensions
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "slow_responses" {
  alarm_name          = "${var.name}-p99-latency"
  alarm_description   = "p99 response time over 2 s for 10 minutes; Slack gives commands 3 s. See docs/operations.md#slow-responses."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.tg_dimensions
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 2
  threshold           = 2
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- tasks -----------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "running_tasks" {
  alarm_name          = "${var.name}-running-tasks"
  alarm_description   = "Fewer conch tasks running than min_count for 10 minutes (crash loop, failed deploy, or capacity). See docs/operations.md#tasks-missing."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = aws_ecs_cluster.conch.name, ServiceName = aws_ecs_service.conch.name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.min_count
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# conch logs JSON lines; count the ones at level "error".
resource "aws_cloudwatch_log_metric_filter" "error_lines" {
  name           = "${var.name}-error-lines"
  log_group_name = aws_cloudwatch_log_group.conch.name
  pattern        = "{ $.level = \"error\" }"

  metric_transformation {
    name          = "ErrorLogLines"
    namespace     = "conch"
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "error_lines" {
  alarm_name          = "${var.name}-error-logs"
  alarm_description   = "More than 20 error log lines in 5 minutes. See docs/operations.md#error-log-lines."
  namespace           = "conch"
  metric_name         = aws_cloudwatch_log_metric_filter.error_lines.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 20
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- database --------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "${var.name}-db-cpu"
  alarm_description   = "Database CPU above 80% for 15 minutes. See docs/operations.md#database-cpu."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = local.db_dimensions
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_storage" {
  alarm_name          = "${var.name}-db-free-storage"
  alarm_description   = "Free storage under 5% of the initial allocation: storage autoscaling reached db_max_allocated_storage or cannot keep up. See docs/operations.md#database-storage."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = local.db_dimensions
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.db_allocated_storage * 0.05 * 1073741824
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_memory" {
  alarm_name          = "${var.name}-db-freeable-memory"
  alarm_description   = "Database freeable memory under 256 MiB for 15 minutes. See docs/operations.md#database-cpu."
  namespace           = "AWS/RDS"
  metric_name         = "FreeableMemory"
  dimensions          = local.db_dimensions
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 268435456
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_connections" {
  alarm_name          = "${var.name}-db-connections"
  alarm_description   = "Database connections above 90% of db_connection_budget. See docs/operations.md#database-connections."
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = local.db_dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = floor(var.db_connection_budget * 0.9)
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Prometheus: conch's own metrics ------------------------------------

resource "aws_prometheus_workspace" "conch" {
  count = var.enable_prometheus ? 1 : 0

  alias = var.name
}

resource "aws_prometheus_rule_group_namespace" "conch" {
  count = var.enable_prometheus ? 1 : 0

  name         = "conch"
  workspace_id = aws_prometheus_workspace.conch[0].id
  data         = file("${path.module}/../prometheus/alerts.yml")
}

resource "aws_prometheus_alert_manager_definition" "conch" {
  count = var.enable_prometheus ? 1 : 0

  workspace_id = aws_prometheus_workspace.conch[0].id
  definition = yamlencode({
    alertmanager_config = yamlencode({
      route = {
        receiver        = "sns"
        group_by        = ["alertname"]
        group_wait      = "30s"
        group_interval  = "5m"
        repeat_interval = "4h"
      }
      receivers = [{
        name = "sns"
        sns_configs = [{
          topic_arn = aws_sns_topic.alarms.arn
          sigv4     = { region = var.region }
        }]
      }]
    })
  })
}

data "aws_caller_identity" "current" {}

# Only this account's alarms and alert manager may publish.
data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  statement {
    sid       = "PrometheusAlertManager"
    actions   = ["sns:Publish", "sns:GetTopicAttributes"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["aps.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

# The collector runs beside conch in each task and scrapes it on
# localhost, so /metrics never leaves the task. The ecs resource detector
# labels every series with the task it came from.
locals {
  adot_config = var.enable_prometheus ? yamlencode({
    extensions = {
      sigv4auth    = { region = var.region, service = "aps" }
      health_check = {}
    }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "15s", scrape_timeout = "5s" }
          scrape_configs = [{
            job_name       = "conch"
            metrics_path   = "/metrics"
            static_configs = [{ targets = ["localhost:8080"] }]
          }]
        }
      }
    }
    processors = {
      resourcedetection = { detectors = ["env", "ecs"], timeout = "5s", override = false }
      batch             = {}
    }
    exporters = {
      prometheusremotewrite = {
        endpoint                         = "${aws_prometheus_workspace.conch[0].prometheus_endpoint}api/v1/remote_write"
        auth                             = { authenticator = "sigv4auth" }
        resource_to_telemetry_conversion = { enabled = true }
      }
    }
    service = {
      extensions = ["sigv4auth", "health_check"]
      pipelines = {
        metrics = {
          receivers  = ["prometheus"]
          processors = ["resourcedetection", "batch"]
          exporters  = ["prometheusremotewrite"]
        }
      }
    }
  }) : ""

  adot_container = {
    name        = "metrics"
    image       = var.adot_image
    essential   = false
    environment = [{ name = "AOT_CONFIG_CONTENT", value = local.adot_config }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.conch.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "metrics"
      }
    }
  }
}
