variable "kubeconfig" {
  type      = string
  sensitive = true
}

variable "s3_key" {
  type      = string
  sensitive = true
}

variable "s3_secret" {
  type      = string
  sensitive = true
}

variable "restic_password" {
  type      = string
  sensitive = true
}

variable "db_password" {
  type      = string
  sensitive = true
}

# An agent's volume, every night at 03:00 Paris time, to an S3 bucket.
resource "selfhost_backup_schedule" "research_data" {
  kubeconfig = var.kubeconfig # e.g. selfhost_k8s_cluster.main.kubeconfig
  namespace  = "agents"
  name       = "research-data"
  schedule   = "0 3 * * *"
  time_zone  = "Europe/Paris"
  source {
    agent = "research" # mounts the claim "research-data" read-only, on the agent's node
  }
  destination {
    s3 {
      endpoint          = "https://s3.example.com"
      bucket            = "backups"
      prefix            = "research"
      access_key_id     = var.s3_key
      secret_access_key = var.s3_secret
    }
  }
  retention {
    keep_last    = 3
    keep_daily   = 7
    keep_weekly  = 4
    keep_monthly = 6
  }
  encryption_password = var.restic_password
}

# A PostgreSQL database, dumped with pg_dump every six hours, to a volume.
resource "selfhost_backup_schedule" "app_db" {
  kubeconfig = var.kubeconfig
  namespace  = "agents"
  name       = "app-db"
  schedule   = "0 */6 * * *"
  source {
    postgres {
      host     = "postgres.agents.svc.cluster.local"
      database = "app"
      user     = "backup"
      password = var.db_password
    }
  }
  destination {
    volume {
      claim = "backups"
    }
  }
  retention {
    keep_last  = 4
    keep_daily = 14
  }
  encryption_password = var.restic_password
}

output "restore_research_data" {
  value = selfhost_backup_schedule.research_data.restore_command
}
