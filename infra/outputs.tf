output "function_urls" {
  description = "URL of every function (HTTP ones need an identity token from an invoker)."
  value       = { for key, fn in google_cloudfunctions2_function.functions : key => fn.service_config[0].uri }
}

output "artifact_bucket" {
  description = "Bucket holding models/, the champion pointer and drift reports."
  value       = google_storage_bucket.artifacts.name
}

output "firestore_database" {
  description = "This deployment's Firestore database of predictions, experiments and reports (FIRESTORE_DATABASE)."
  value       = google_firestore_database.main.name
}

output "ingestion_firestore_database" {
  description = "The ingestion functions' own database (watermark and run summaries)."
  value       = google_firestore_database.ingestion.name
}

output "source_bucket" {
  description = "Bucket holding the zipped function source."
  value       = google_storage_bucket.source.name
}

output "topics" {
  description = "Pub/Sub topics of the loop."
  value       = { for key, topic in google_pubsub_topic.topics : key => topic.name }
}
