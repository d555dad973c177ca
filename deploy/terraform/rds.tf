# PostgreSQL 15 on RDS: Multi-AZ (a synchronous standby in another zone,
# automatic failover in a minute or two), encrypted, automated backups with
# point-in-time recovery, deletion protection.
#
# The master user's password is generated and kept by RDS in Secrets
# Manager. conch must NOT connect as it: conch's roles may be neither
# superuser nor BYPASSRLS, or Row-Level Security would stop isolating
# teams. Create them once with deploy/db-bootstrap.sql (see
# deploy/README.md): the runtime role's URL goes in the database_url
# secret, the schema owner's in database_migrate_url.
#
# Growing past one database: see "Growing past one database" in
# deploy/README.md (team_id leads every key; Citus or per-team routing).

resource "aws_db_subnet_group" "conch" {
  name       = var.name
  subnet_ids = local.database_subnet_ids
}

resource "aws_db_parameter_group" "conch" {
  name   = "${var.name}-postgres${split(".", var.db_engine_version)[0]}"
  family = "postgres${split(".", var.db_engine_version)[0]}"

  # Refuse unencrypted connections.
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }

  # Slow statements (ms) go to the postgresql log, exported to CloudWatch.
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  # A session stuck inside a transaction would hold row locks that timed
  # releases and job claims wait on; end it after a minute.
  parameter {
    name  = "idle_in_transaction_session_timeout"
    value = "60000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "conch" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name                       = "conch"
  username                      = "conch_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.conch.arn

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.conch.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.conch.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.conch.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = var.db_backup_window
  maintenance_window        = var.db_maintenance_window
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.conch.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}
