"""Entry points loaded by path through functions-framework, as Cloud Functions does."""

from functions_framework import create_app

from tests.conftest import ROOT

SOURCE = str(ROOT / "main.py")


def client(target: str, signature_type: str = "http"):
    return create_app(target, SOURCE, signature_type).test_client()
