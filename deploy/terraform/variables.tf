# --- general -------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "name" {
  description = "Name prefix for every resource."
  type        = string
  default     = "conch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2 to 21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag (production, staging, ...)."
  type        = string
  default     = "production"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network -------------------------------------------------------------

variable "vpc_id" {
  description = "An existing VPC to use. When null, a VPC with public, private and database subnets is created."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "With vpc_id: public subnets (2+ AZs) for the load balancer."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "With vpc_id: private subnets (2+ AZs) with outbound internet (NAT) for the conch tasks."
  type        = list(string)
  default     = []
}

variable "database_subnet_ids" {
  description = "With vpc_id: private subnets (2+ AZs) for the database."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread the created subnets over."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper; outbound calls to Slack and Stripe stop if that AZ fails)."
  type        = bool
  default     = false
}

# --- HTTPS front ---------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate for the public host name (in the same region)."
  type        = string
}

variable "public_hostname" {
  description = "Host name Slack, Stripe and browsers use, e.g. conch.example.com. public_url is https://<this>."
  type        = string
}

variable "route53_zone_id" {
  description = "When set, an alias record for public_hostname is created in this hosted zone."
  type        = string
  default     = null
}

variable "admin_cidr_blocks" {
  description = "Required: the operator networks (1 to 3 CIDRs) that may reach /admin. Everyone else gets 404, at the load balancer and again in conch itself (admin_allow)."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidr_blocks) >= 1 && length(var.admin_cidr_blocks) <= 3
    error_message = "Name 1 to 3 CIDRs (an ALB rule condition takes at most 3); /admin is never left open to the internet."
  }

  validation {
    condition     = alltrue([for c in var.admin_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0" && c != "::/0"])
    error_message = "Each entry must be a CIDR such as 203.0.113.0/24, and not the whole internet."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

# --- conch service -------------------------------------------------------

variable "image_tag" {
  description = "Tag of the conch image in the created ECR repository (the tags are immutable: use the git describe or commit)."
  type        = string
}

variable "image_repository" {
  description = "Use this image repository instead of the created ECR one (e.g. a shared registry)."
  type        = string
  default     = null
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; the image must be built for it."
  type        = string
  default     = "X86_64"
}

variable "task_cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "task_memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 2048
}

variable "min_count" {
  description = "Fewest conch tasks; at least 2 so one AZ or one task can fail."
  type        = number
  default     = 2

  validation {
    condition     = var.min_count >= 2
    error_message = "Run at least 2 conch tasks."
  }
}

variable "max_count" {
  description = "Most conch tasks the autoscaler may run."
  type        = number
  default     = 8
}

variable "cpu_target_percent" {
  description = "Average CPU the autoscaler aims for."
  type        = number
  default     = 60
}

variable "http_threads" {
  description = "CONCH_HTTP_THREADS: request threads per task (each holds one database connection)."
  type        = number
  default     = 8
}

variable "job_threads" {
  description = "CONCH_JOB_THREADS: job runners per task (each holds one database connection)."
  type        = number
  default     = 2
}

variable "log_level" {
  description = "CONCH_LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level: debug, info, warn or error."
  }
}

variable "slack_client_id" {
  description = "CONCH_SLACK_CLIENT_ID (not a secret)."
  type        = string
  default     = ""
}

variable "stripe_price_pro" {
  description = "CONCH_STRIPE_PRICE_PRO: the Stripe price id of the paid plan."
  type        = string
  default     = ""
}

variable "extra_environment" {
  description = "Further non-secret CONCH_* variables for the tasks."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the conch log group."
  type        = number
  default     = 90
}

# --- database ------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m6g.large"
}

variable "db_engine_version" {
  description = "PostgreSQL version (major only lets RDS pick and upgrade the minor)."
  type        = string
  default     = "15"
}

variable "db_allocated_storage" {
  description = "Initial storage (GiB)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 500
}

variable "db_backup_retention_days" {
  description = "Automated backups (and point-in-time recovery window), 1 to 35 days."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days: 1 to 35."
  }
}

variable "db_backup_window" {
  description = "Daily backup window (UTC), outside the maintenance window."
  type        = string
  default     = "02:00-03:00"
}

variable "db_maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type        = string
  default     = "sun:04:00-sun:05:00"
}

variable "db_connection_budget" {
  description = "Connections conch may hold at most: 2 x max_count x (http_threads + job_threads + 2) must fit (a rolling deploy doubles the tasks). Keep it under the instance's max_connections less a margin for operators and maintenance."
  type        = number
  default     = 300
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion."
  type        = bool
  default     = true
}

# --- monitoring ----------------------------------------------------------

variable "alarm_email" {
  description = "When set, this address is subscribed to the alarm topic (it must confirm)."
  type        = string
  default     = null
}

variable "enable_prometheus" {
  description = "Scrape /metrics with an ADOT collector sidecar into Amazon Managed Service for Prometheus, with the rules of deploy/prometheus/alerts.yml."
  type        = bool
  default     = true
}

variable "adot_image" {
  description = "AWS Distro for OpenTelemetry collector image (pinned)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "db_admin_security_group_ids" {
  description = "Security groups (e.g. a bastion reached through SSM) also allowed to reach PostgreSQL, for the one-time role set-up and admin-user."
  type        = list(string)
  default     = []
}
