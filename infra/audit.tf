# Data Access audit logs for the two data stores: every read and write of a
# prediction record or an artifact, with the identity that made it. (Google
# recommends these over bucket usage logs; for Firestore the service to
# configure is datastore.googleapis.com, which covers firestore.googleapis.com.)
#
# An audit config is per project and service: a second deployment in the same
# project sets the same one, and destroying either removes it for both.
resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(var.data_access_audit_logs ? ["storage.googleapis.com", "datastore.googleapis.com"] : [])
  project  = var.project_id
  service  = each.value

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
