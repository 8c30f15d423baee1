from adapters.openai.responder import OpenAICompatibleResponder

__all__ = ["OpenAICompatibleResponder"]
