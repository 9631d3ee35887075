"""Conversation data: schema, importers, synthetic transcripts, redaction, de-duplication, split."""
