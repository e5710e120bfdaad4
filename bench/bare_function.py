"""The baseline for the serving benchmark: the same model, loaded the same way,
answering the same query -- without validation beyond float() and without
logging. The difference to /predict is what logging and the contract cost."""

import json

import functions_framework

from shared import wiring


@functions_framework.http
def bare_predict(request):
    row = [float(request.args[name]) for name in ("temperature", "heart_rate", "blood_pressure")]
    model = wiring.model_loader().get()
    label, probabilities = model.predict([row])[0]
    return json.dumps({"prediction": label, "probabilities": probabilities, "model_version": model.version}), 200, {
        "Content-Type": "application/json"}
