terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }

  # Keep state remote, locked and encrypted. Fill in and uncomment, or pass
  # -backend-config at `terraform init`.
  #
  # backend "s3" {
  #   bucket         = "example-terraform-state"
  #   key            = "conch/production.tfstate"
  #   region         = "eu-west-1"
  #   dynamodb_table = "terraform-locks"
  #   encrypt        = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Application = "conch", Environment = var.environment }, var.tags)
  }
}
