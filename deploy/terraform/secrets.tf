# Secrets live in AWS Secrets Manager, one secret per conch key, encrypted
# with a customer-managed KMS key. Terraform creates the empty secrets and
# never their values, so no secret ends up in the Terraform state: put each
# value with
#
#   aws secretsmanager put-secret-value --secret-id conch/token_keys --secret-string '1:BASE64...'
#
# before the first deploy (a task whose secret has no value fails to start).
# ECS reads them at task start and hands them to conch as CONCH_<KEY>
# variables; after changing one, roll the service (force a new deployment).

# database_url is the runtime role's (conch, which owns nothing); only the
# migrating containers get database_migrate_url, the schema owner's
# (conch_owner): the serving process never holds the owner's password.
locals {
  secret_keys = [
    "database_url",
    "database_migrate_url",
    "token_keys",
    "session_secret",
    "slack_client_secret",
    "slack_signing_secret",
    "stripe_secret_key",
    "stripe_webhook_secret",
  ]
}

resource "aws_kms_key" "conch" {
  description             = "${var.name}: secrets, database storage, Performance Insights"
  enable_key_rotation     = true
  deletion_window_in_days = 30
}

resource "aws_kms_alias" "conch" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.conch.key_id
}

resource "aws_secretsmanager_secret" "conch" {
  for_each = toset(local.secret_keys)

  name                    = "${var.name}/${each.key}"
  description             = "conch ${each.key}, passed to the tasks as CONCH_${upper(each.key)}"
  kms_key_id              = aws_kms_key.conch.arn
  recovery_window_in_days = 30
}
