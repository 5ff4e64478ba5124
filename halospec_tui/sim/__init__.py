"""The embedded speculative-decoding server: real compute, Lemonade/llama-server protocol."""
