# Internet-facing Application Load Balancer: HTTPS to the conch tasks,
# HTTP only redirects. Slack and Stripe reach /slack/* and /stripe/webhook
# here; /metrics is not served to the internet; /admin only to the operator
# networks of var.admin_cidr_blocks. conch enforces both again itself
# (metrics_allow, admin_allow), on the path as sent: a percent-encoded
# "/%61dmin" passes these path rules but is a 404 in conch.

resource "aws_lb" "conch" {
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = false
  security_groups            = [aws_security_group.alb.id]
  subnets                    = local.public_subnet_ids
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # Below conch's own 15 s keep-alive (HTTP_IDLE_TIMEOUT), so the load
  # balancer never reuses a connection conch is closing (a stray 502).
  idle_timeout = 10
}

resource "aws_lb_target_group" "conch" {
  name                 = var.name
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = local.vpc_id
  deregistration_delay = 30

  # Readiness: /healthz is 200 while the instance reaches the database and
  # is not draining (after SIGTERM it answers 503). Six misses (60 s)
  # before a target is taken out: an RDS Multi-AZ failover takes about that
  # long, and every instance fails together while it lasts. Liveness is the
  # container's own check on /livez (ecs.tf).
  health_check {
    path                = "/healthz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 6
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.conch.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.conch.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.conch.arn
  }
}

# Metrics are for the in-task collector (localhost:8080), not the world.
resource "aws_lb_listener_rule" "hide_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "404"
      message_body = "not found\n"
    }
  }
}

moved {
  from = aws_lb_listener_rule.admin_allowed[0]
  to   = aws_lb_listener_rule.admin_allowed
}

moved {
  from = aws_lb_listener_rule.admin_denied[0]
  to   = aws_lb_listener_rule.admin_denied
}

resource "aws_lb_listener_rule" "admin_allowed" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 20

  condition {
    path_pattern {
      values = ["/admin", "/admin/*"]
    }
  }

  condition {
    source_ip {
      values = var.admin_cidr_blocks
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.conch.arn
  }
}

resource "aws_lb_listener_rule" "admin_denied" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 21

  condition {
    path_pattern {
      values = ["/admin", "/admin/*"]
    }
  }

  action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "404"
      message_body = "not found\n"
    }
  }
}

resource "aws_route53_record" "conch" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.public_hostname
  type    = "A"

  alias {
    name                   = aws_lb.conch.dns_name
    zone_id                = aws_lb.conch.zone_id
    evaluate_target_health = true
  }
}
