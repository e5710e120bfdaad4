"""Training: bootstrap data (`synthetic_data`), the candidate search
(`candidates`), one training run end to end (`runs`), the promotion gate, and the
handler of Pub/Sub retrain requests (`retrain_handler`)."""
