"""Shared plumbing every layer uses: the HTTP transport, dynamic batching, atomic file writes, logging, secret
redaction, telemetry and the event-loop bridge. Nothing here knows about critiques or images."""
