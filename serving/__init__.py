"""supportserve serving: an OpenAI-compatible endpoint over vLLM inside Ray Serve."""
